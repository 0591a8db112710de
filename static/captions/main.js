// The viewer page's entry point (templates/captions.html loads it as a module): everything else is in viewer.js.
import { mountViewer } from './viewer.js';

mountViewer(document, window);

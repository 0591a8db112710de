// The page's entry point (templates/index.html loads it as a module): everything else is in page/.
import { mountPage } from './page/main.js';

mountPage();

// Rough finals: words an engine gives as final without its better pass. The offline engine says so with a warning
// just before the final ("… this final is the fast pass's text."); the page turns that into a quiet mark on the
// final itself (and `rough: true` in the JSON export) instead of a banner per final, and gives the text the casing
// and sentence punctuation the better pass would have given, as far as that can be done without guessing. Words
// that never got a final (the recording was cut off while they were an interim) are kept the same way.
//
// Pure: no DOM, so it is tested under Node.

// What the engine's fallback warnings have in common (server/engine/outcomes.py: *_WARNING). Matched on the text,
// not the provider, so a cloud engine's warnings are never taken for one.
const FALLBACK = /\bthis final is the fast pass'?s text\b/i;

/** The one explanation, shown on demand next to the transcript. */
export const ROUGH_EXPLANATION = 'Lines marked “rough” are, in whole or in part, the quick first listen’s words: '
  + 'the careful second listen did not get to them, because the computer was busy or the recording was cut off (a '
  + 'reload, a lost connection) before they were final, or it missed them in noise. A word or two may be wrong, and '
  + 'their punctuation is only a capital and a full stop.';

/**
 * Whether a warning announces that the next final is the fast pass's text.
 * @param {string} message
 */
export function isFallbackWarning(message) {
  return FALLBACK.test(message);
}

/**
 * The casing and sentence punctuation that can be applied without understanding the words: a capital first letter,
 * "I" (and its contractions) as a word, and a full stop at the end unless the text already ends a sentence. Commas,
 * names and question marks are not guessed: a wrong one misleads more than a missing one.
 * @param {string} text
 * @returns {string}
 */
export function tidyRough(text) {
  let out = text.trim().replace(/\s+/g, ' ');
  if (!out) return out;
  out = out.replace(/(^|\s)i(?=$|\s|'(?:m|ll|ve|d|s)\b)/g, '$1I');
  out = out.replace(/^(\P{L}*)(\p{Ll})/u, (_, lead, first) => lead + first.toUpperCase());
  if (!/[.!?…]["')\]]*$/.test(out)) out += '.';
  return out;
}

/**
 * Words that never got a final (the recording was cut off while they were an interim), as the rough line they are
 * kept as: on the page at the end of a failed run, after a reload, in the history and in exports.
 * @param {string} text
 * @param {number | null} startMs  where the utterance began on the transcript's clock, when known
 */
export function unfinishedSegment(text, startMs) {
  return { text: tidyRough(text), startMs, endMs: null, words: [], estimated: true, rough: true };
}

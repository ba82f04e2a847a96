"use strict";
// 12351 职工服务热线 — minimal client. All server text goes into the DOM via textContent / text nodes only.

const $ = (id) => document.getElementById(id);
const TOKEN = "hotline.token";
const USER = "hotline.user";
const ROLES = { agent: "接线员", mediator: "调解员", manager: "管理人员", admin: "管理员" };
const SPEAKERS = { caller: "来电人", agent: "接线员", speaker: "说话人" };
const ACTIONS = {
  "auth.login": "登录", "auth.login_failed": "登录失败", "auth.denied": "越权访问被拒绝",
  "recording.received": "接收录音", "recording.duplicate": "重复上传", "recording.played": "播放录音",
  "recording.downloaded": "下载录音", "transcription.started": "开始转写", "transcription.failed": "转写失败",
  "transcription.requeued": "重新排队转写", "transcript.created": "转写完成", "case.created": "生成工单",
  "case.read": "查看工单", "search": "检索",
};
const NETWORK_ERROR = "网络错误，请稍后重试";

const state = { caseId: null, recordingId: null, audioUrl: null, pendingSeek: null, segments: [], activeSeg: null, seq: 0 };

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// ---------- helpers ----------
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}
function pad(n) { return String(n).padStart(2, "0"); }
function fmtTime(iso) {
  if (!iso) return "";
  const s = String(iso);
  const d = new Date(/(?:[zZ]|[+-]\d\d:?\d\d)$/.test(s) ? s : s + "Z"); // naive timestamps are UTC
  if (Number.isNaN(d.getTime())) return s;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fmtClock(sec) {
  const t = Math.max(0, Math.floor(Number(sec) || 0));
  return `${pad(Math.floor(t / 60))}:${pad(t % 60)}`;
}
function pct(x) { return typeof x === "number" ? `${Math.round(x * 100)}%` : ""; }
function truncate(s, n) { s = String(s ?? ""); return s.length > n ? s.slice(0, n) + "…" : s; }
function speakerLabel(s) { return SPEAKERS[s] || s || ""; }

let noticeTimer = null;
function notify(msg, kind = "error") {
  clearTimeout(noticeTimer);
  $("notice").className = `notice notice-${kind}`;
  $("notice-text").textContent = msg;
  $("notice").hidden = false;
  if (kind !== "error") noticeTimer = setTimeout(() => { $("notice").hidden = true; }, 6000);
}
function report(err) {
  if (err instanceof HttpError && err.status === 401) return; // already back on the login form
  notify(err instanceof HttpError ? err.message : NETWORK_ERROR);
  if (!(err instanceof HttpError)) console.error(err);
}

// ---------- API ----------
async function api(path, { method = "GET", body, raw = false, login = false } = {}) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN);
  if (token && !login) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, body, headers });
  } catch {
    throw new HttpError(0, NETWORK_ERROR);
  }
  if (!res.ok) {
    let detail = null;
    try { const j = await res.json(); if (typeof j.detail === "string") detail = j.detail; } catch { /* not JSON */ }
    if (res.status === 401 && !login) {
      expire();
      throw new HttpError(401, "登录已过期，请重新登录");
    }
    throw new HttpError(res.status, detail || `${NETWORK_ERROR}（HTTP ${res.status}）`);
  }
  if (raw) return res;
  try { return await res.json(); } catch { throw new HttpError(res.status, "服务器返回的数据无法识别，请稍后重试"); }
}

// ---------- session ----------
function currentUser() {
  try { return JSON.parse(sessionStorage.getItem(USER) || "null"); } catch { return null; }
}
function showLogin(msg = "") {
  $("app-view").hidden = true;
  $("userbox").hidden = true;
  $("login-view").hidden = false;
  $("login-msg").textContent = msg;
  $("login-pass").value = "";
  $("login-user").focus();
}
function expire() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(USER);
  resetDetail();
  showLogin("登录已过期，请重新登录");
}
function showApp() {
  const user = currentUser() || {};
  $("user-name").textContent = `${user.username || ""}（${ROLES[user.role] || user.role || ""}）`;
  $("upload-form").hidden = user.role === "manager"; // managers may not upload
  $("login-view").hidden = true;
  $("userbox").hidden = false;
  $("app-view").hidden = false;
  loadCases().catch(report);
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-msg").textContent = "";
  const body = new URLSearchParams({ username: $("login-user").value.trim(), password: $("login-pass").value });
  try {
    const data = await api("/api/v1/auth/token", { method: "POST", body, login: true });
    sessionStorage.setItem(TOKEN, data.access_token);
    sessionStorage.setItem(USER, JSON.stringify(data.user || {}));
    $("notice").hidden = true;
    showApp();
  } catch (err) {
    $("login-msg").textContent = err instanceof HttpError ? err.message : NETWORK_ERROR;
  }
});
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(USER);
  resetDetail();
  $("case-rows").replaceChildren();
  clearSearch();
  showLogin();
});
$("notice-close").addEventListener("click", () => { $("notice").hidden = true; });

// ---------- upload ----------
$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("up-file").files[0];
  if (!file) { notify("请选择录音文件"); return; }
  const form = new FormData();
  form.append("file", file);
  form.append("layout", $("up-layout").value);
  form.append("channel", $("up-channel").value);
  const status = $("up-status");
  const button = ev.submitter || $("upload-form").querySelector("button");
  button.disabled = true;
  status.textContent = "正在上传…";
  try {
    const res = await api("/api/v1/recordings", { method: "POST", body: form, raw: true });
    let rec;
    try { rec = await res.json(); } catch { throw new HttpError(res.status, "服务器返回的数据无法识别，请稍后重试"); }
    $("up-file").value = "";
    if (rec.duplicate || res.status === 200) {
      status.textContent = "该录音已存在";
      notify("该录音已存在", "info");
    } else {
      status.textContent = "已上传，正在转写…";
      notify("已上传，正在转写…", "ok");
    }
    if (rec.status === "done" || rec.status === "failed") loadCases().catch(report);
    else pollRecording(rec.id, rec.original_name || file.name);
  } catch (err) {
    status.textContent = "";
    report(err);
  } finally {
    button.disabled = false;
  }
});

function pollRecording(id, name) {
  let failures = 0;
  const tick = async () => {
    if (!sessionStorage.getItem(TOKEN)) return;
    try {
      const rec = await api(`/api/v1/recordings/${id}`);
      failures = 0;
      if (rec.status === "done") {
        $("up-status").textContent = `“${name}”转写完成`;
        notify(`“${name}”转写完成，已生成工单`, "ok");
        loadCases().catch(report);
      } else if (rec.status === "failed") {
        $("up-status").textContent = `“${name}”转写失败`;
        notify(`“${name}”转写失败：${rec.error || "未知原因"}`);
        loadCases().catch(report);
      } else {
        setTimeout(tick, 2000);
      }
    } catch (err) {
      if (err instanceof HttpError && err.status === 0 && ++failures < 5) setTimeout(tick, 4000);
      else report(err);
    }
  };
  setTimeout(tick, 2000);
}

// ---------- case list ----------
async function loadCases() {
  const data = await api("/api/v1/cases?limit=50");
  $("case-total").textContent = `（共 ${data.total} 件）`;
  const rows = (data.items || []).map((c) => {
    const tr = el("tr", { tabIndex: 0, title: c.summary || "" },
      el("td", {}, c.case_no), el("td", { className: "nowrap" }, fmtTime(c.created_at)), el("td", {}, c.channel),
      el("td", { className: "nowrap" }, `${c.category || ""} ${pct(c.category_confidence)}`),
      el("td", {}, c.enterprise || "—"), el("td", {}, c.district || "—"), el("td", {}, c.status),
      el("td", { className: "summary" }, truncate(c.summary, 40)));
    tr.dataset.id = c.id;
    if (c.id === state.caseId) tr.classList.add("selected");
    tr.addEventListener("click", () => openCase(c.id));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") openCase(c.id); });
    return tr;
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 8, className: "muted" }, "暂无工单")));
  $("case-rows").replaceChildren(...rows);
}
$("case-refresh").addEventListener("click", () => loadCases().catch(report));

// ---------- search ----------
function highlight(text, tokens) {
  // Build text nodes and <mark> elements from the raw text; nothing is parsed as HTML.
  text = String(text ?? "");
  const lower = text.toLowerCase();
  const hay = lower.length === text.length ? lower : text;
  const marked = new Array(text.length).fill(false);
  for (const t of new Set((tokens || []).filter((x) => typeof x === "string" && x))) {
    const needle = hay === lower ? t.toLowerCase() : t;
    for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) marked.fill(true, i, i + needle.length);
  }
  const frag = document.createDocumentFragment();
  for (let i = 0; i < text.length;) {
    let j = i;
    while (j < text.length && marked[j] === marked[i]) j++;
    frag.append(marked[i] ? el("mark", {}, text.slice(i, j)) : text.slice(i, j));
    i = j;
  }
  return frag;
}
function clearSearch() {
  $("search-results").hidden = true;
  $("search-clear").hidden = true;
  $("hit-list").replaceChildren();
  $("search-q").value = "";
}
$("search-clear").addEventListener("click", clearSearch);
$("search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("search-q").value.trim();
  if (!q) { clearSearch(); return; }
  try {
    const data = await api(`/api/v1/search?q=${encodeURIComponent(q)}`);
    $("search-title").textContent = `“${data.query ?? q}”的检索结果：共 ${data.total} 条`;
    const hits = (data.items || []).map((h) => {
      const li = el("li", { tabIndex: 0 },
        el("div", { className: "hit-meta" }, `${h.case_no} · ${h.category || ""} · ${h.enterprise || "—"} · ${h.status || ""}`),
        el("div", {}, el("span", { className: "clock" }, fmtClock(h.start)), ` ${speakerLabel(h.speaker)}：`,
          highlight(h.text, data.tokens)));
      const go = () => openCase(h.case_id, h.start);
      li.addEventListener("click", go);
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
      return li;
    });
    if (!hits.length) hits.push(el("li", { className: "muted" }, "没有找到相关内容"));
    $("hit-list").replaceChildren(...hits);
    $("search-results").hidden = false;
    $("search-clear").hidden = false;
  } catch (err) {
    report(err);
  }
});

// ---------- case detail ----------
const player = $("player");

function resetDetail() {
  state.seq++;
  state.caseId = state.recordingId = state.pendingSeek = state.activeSeg = null;
  state.segments = [];
  player.pause();
  player.removeAttribute("src");
  player.load();
  if (state.audioUrl) URL.revokeObjectURL(state.audioUrl);
  state.audioUrl = null;
  $("detail-body").hidden = true;
  $("detail-empty").hidden = false;
}

function seek(sec, play = true) {
  const t = Math.max(0, Number(sec) || 0);
  if (!state.audioUrl || player.readyState < 1) { state.pendingSeek = t; return; }
  player.currentTime = t;
  if (play) player.play().catch(() => {});
}
player.addEventListener("loadedmetadata", () => {
  if (state.pendingSeek !== null) { const t = state.pendingSeek; state.pendingSeek = null; seek(t); }
});
player.addEventListener("timeupdate", () => {
  const t = player.currentTime;
  const seg = state.segments.find((s) => t >= s.start && t < s.end) || null;
  if (seg === state.activeSeg) return;
  if (state.activeSeg) state.activeSeg.node.classList.remove("active");
  state.activeSeg = seg;
  if (seg) { seg.node.classList.add("active"); seg.node.scrollIntoView({ block: "nearest" }); }
});

async function openCase(id, start = null) {
  if (id === state.caseId) { if (start !== null) seek(start); return; }
  resetDetail();
  const seq = state.seq;
  state.caseId = id;
  state.pendingSeek = start;
  for (const tr of $("case-rows").children) tr.classList.toggle("selected", tr.dataset.id === String(id));
  try {
    const c = await api(`/api/v1/cases/${id}`);
    if (seq !== state.seq) return;
    state.recordingId = c.recording_id;
    renderCase(c);
    loadAudio(c.recording_id, seq);
    loadTimeline(id, seq);
  } catch (err) {
    if (seq === state.seq) state.caseId = null;
    report(err);
  }
}

function renderCase(c) {
  $("d-title").textContent = `工单 ${c.case_no}`;
  const tr = c.transcript;
  const fields = [
    ["工单号", c.case_no], ["受理时间", fmtTime(c.created_at)], ["来源", c.channel], ["状态", c.status],
    ["类别", `${c.category || ""}（置信度 ${pct(c.category_confidence)}）`], ["企业", c.enterprise || "—"],
    ["区市", c.district || "—"], ["摘要", c.summary || "—"],
    ["转写", tr ? `${tr.engine || ""} ${tr.model || ""}${tr.processing_s != null ? `，用时 ${Number(tr.processing_s).toFixed(1)} 秒` : ""}` : "尚未转写"],
  ];
  $("d-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "")]));

  const ev = c.category_evidence || [];
  $("d-evidence").replaceChildren(...(ev.length ? [el("span", { className: "muted" }, "分类依据：")] : []),
    ...ev.map((e) => {
      const a = el("a", { href: "#", title: `${e.category || ""} · ${speakerLabel(e.speaker)} · ${fmtClock(e.start)}` },
        `${e.term}（${fmtClock(e.start)}）`);
      a.addEventListener("click", (evt) => { evt.preventDefault(); seek(e.start); });
      return a;
    }));

  const segs = (tr && tr.segments) || [];
  state.segments = segs.map((s) => {
    const li = el("li", { tabIndex: 0, className: `seg seg-${s.speaker}` },
      el("span", { className: "clock" }, fmtClock(s.start)),
      el("span", { className: "spk" }, speakerLabel(s.speaker)), el("span", { className: "txt" }, s.text));
    li.addEventListener("click", () => seek(s.start));
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") seek(s.start); });
    return { start: Number(s.start), end: Number(s.end), node: li };
  });
  $("d-segments").replaceChildren(...(state.segments.length ? state.segments.map((s) => s.node)
    : [el("li", { className: "muted" }, tr ? "转写内容为空" : "录音尚未转写完成")]));
  $("d-timeline").replaceChildren();
  $("player-msg").textContent = "正在加载录音…";
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("detail").scrollTop = 0;
}

async function loadAudio(recordingId, seq) {
  try {
    const res = await api(`/api/v1/recordings/${recordingId}/audio`, { raw: true });
    const blob = await res.blob();
    if (seq !== state.seq) return;
    if (state.audioUrl) URL.revokeObjectURL(state.audioUrl);
    state.audioUrl = URL.createObjectURL(blob);
    player.src = state.audioUrl;
    $("player-msg").textContent = "";
  } catch (err) {
    if (seq !== state.seq) return;
    const msg = err instanceof HttpError ? (err.status === 403 ? "没有播放权限" : err.message) : NETWORK_ERROR;
    $("player-msg").textContent = `录音无法播放：${msg}`;
  }
}

async function loadTimeline(caseId, seq) {
  try {
    const events = await api(`/api/v1/cases/${caseId}/timeline`);
    if (seq !== state.seq) return;
    $("d-timeline").replaceChildren(...events.map((e) => el("tr", { title: e.action },
      el("td", { className: "nowrap" }, fmtTime(e.at)), el("td", {}, e.actor), el("td", {}, ACTIONS[e.action] || e.action))));
  } catch (err) {
    if (seq === state.seq) report(err);
  }
}

function filenameFrom(header) {
  if (!header) return "recording.wav";
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(header);
  if (star) { try { return decodeURIComponent(star[1].trim().replace(/^"|"$/g, "")); } catch { /* fall through */ } }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : "recording.wav";
}

$("d-download").addEventListener("click", async () => {
  if (state.recordingId === null) return;
  const button = $("d-download");
  button.disabled = true;
  try {
    const res = await api(`/api/v1/recordings/${state.recordingId}/download`, { raw: true });
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: filenameFrom(res.headers.get("Content-Disposition")) });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    if (err instanceof HttpError && err.status === 403) notify("没有下载权限");
    else report(err);
  } finally {
    button.disabled = false;
  }
});

// ---------- start ----------
window.addEventListener("unhandledrejection", (e) => { report(e.reason); });
if (sessionStorage.getItem(TOKEN) && currentUser()) showApp();
else showLogin();

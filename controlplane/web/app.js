// Switchyard demo app: one RTCPeerConnection per participant, signalling
// protocol v1 (docs/signalling.md) and nothing else. No build step.
//
// The server is the impolite peer: when both sides offer at once it refuses
// ours with `bad_state` (glare) and we answer its offer first, then offer
// again. Every offer/answer step runs in one queue so they never interleave.

const V = 1;
const LAYERS = [
  // low to high: the server takes the rids in this order as layers 0, 1, 2
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

// A shared screen: one layer at the captured resolution (text needs every
// pixel; a downscaled copy would only blur it), few frames a second. The
// track's content hint ("detail") tells the encoder to drop frames rather
// than resolution when the path is narrow.
const SCREEN_ENCODING = { maxBitrate: 2_500_000, maxFramerate: 15 };
const SCREEN_CAPTURE = { video: { frameRate: { ideal: 15, max: 15 }, width: { max: 1920 }, height: { max: 1080 } }, audio: false };

const $ = (id) => document.getElementById(id);

const state = {
  ws: null,
  pc: null,
  me: null,
  room: null,
  local: null,
  audioMid: null,
  videoMid: null,
  offering: false,
  offerAgain: false,
  participants: new Map(), // id -> {name, tile, stream, sources: Map(sourceId -> {kind, mid, muted, content}), screens: Map(sourceId -> tile)}
  screen: null, // our shared screen: {track, stream, transceiver, tile}
  screenTransceiver: null, // kept for the next share (no new m-line)
  errors: [],
  left: false,
  pinned: null, // tile key shown large: a participant id (camera) or a source id (screen)
  heightOverride: null, // tests: one max height for every remote video
  chat: [], // {from, name, text, private, mine} in the order shown
};
// for people poking around in the console, and for the browser tests
window.switchyard = state;

let queue = Promise.resolve();
function serially(step) {
  queue = queue.then(step).catch((e) => fail(`signalling step failed: ${e.message || e}`));
  return queue;
}

// While a new connection opens (a resume after a network change), what
// the page says waits for it instead of vanishing: an ICE restart's offer
// sent then was lost, and the restart had to be tried again a second later.
const OUTBOX_MAX = 32;
function send(msg) {
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ v: V, ...msg }));
  } else if (ws && ws.readyState === WebSocket.CONNECTING && msg.type !== "ping") {
    state.outbox = [...(state.outbox || []).slice(1 - OUTBOX_MAX), msg];
  }
}

function setStatus(text, kind = "") {
  const s = $("status");
  s.textContent = text;
  s.className = `status ${kind}`;
}

function fail(text) {
  state.errors.push(text);
  console.error(text);
  setStatus(text, "bad");
}

// A notice for everyone in the call (server going away), in the same banner
// as the configuration warnings.
function showNotice(text) {
  const box = $("server-warnings");
  const p = document.createElement("p");
  p.textContent = text;
  box.append(p);
  box.hidden = false;
  state.notices = [...(state.notices || []), text];
}

// ---- chat -----------------------------------------------------------------

// One line of the chat. The text is put in as text, never as HTML: what a
// participant typed is shown exactly as typed.
function addChat(line, mine = false, at = Date.now()) {
  const li = document.createElement("li");
  if (line.private) li.className = "private";
  const who = document.createElement("strong");
  who.textContent = mine ? "You" : line.private ? `${line.name} (to you)` : line.name;
  const text = document.createElement("span");
  text.textContent = line.text;
  li.append(who, document.createTextNode(": "), text);
  $("chat-log").append(li);
  li.scrollIntoView({ block: "end" });
  state.chat.push({ from: line.from || state.me, name: line.name, text: line.text, private: !!line.private, mine, at });
}

function chatNotice(text) {
  const n = $("chat-notice");
  n.textContent = text;
  n.hidden = false;
  clearTimeout(state.chatNoticeTimer);
  state.chatNoticeTimer = setTimeout(() => (n.hidden = true), 5000);
  state.chatNotices = [...(state.chatNotices || []), text];
}

function sendChat(text, to = null) {
  text = text.trim();
  if (!text) return;
  // when it left (others may show it before this page has drawn it)
  const at = Date.now();
  send(to ? { type: "chat", text, to } : { type: "chat", text });
  addChat({ name: state.name, text, private: !!to }, true, at);
}

function showConnection() {
  const ws = state.ws && state.ws.readyState === WebSocket.OPEN ? "signalling open" : "signalling closed";
  const media = state.pc ? `media ${state.pc.connectionState}` : "media not started";
  const good = state.pc && state.pc.connectionState === "connected";
  setStatus(`${ws} · ${media}`, good ? "ok" : state.pc && state.pc.connectionState === "failed" ? "bad" : "");
}

// What the operator was warned of at start (e.g. media bound to loopback
// while this page is served to other machines): shown, so a call that
// cannot work says why instead of failing silently.
async function showServerWarnings() {
  try {
    const health = await (await fetch("/health")).json();
    const warnings = health.warnings || [];
    const box = $("server-warnings");
    box.replaceChildren(...warnings.map((w) => {
      const p = document.createElement("p");
      p.textContent = `Server configuration: ${w}`;
      return p;
    }));
    box.hidden = warnings.length === 0;
    state.serverWarnings = warnings;
  } catch (e) {
    console.warn("no /health", e);
  }
}
showServerWarnings();

// ---- tiles ----------------------------------------------------------------

// A tile: `key` is what pinning it names (a participant id for a camera, a
// source id for a screen).
function makeTile(key, text, local, screen = false) {
  const tile = document.createElement("div");
  tile.className = `tile${local ? " local" : ""}${screen ? " screen" : ""}`;
  tile.dataset.key = key;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // a tile's sound plays from its participant's camera tile
  if (!local) tile.onclick = () => pin(state.pinned === key ? null : key);
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = text;
  const muted = document.createElement("span");
  muted.className = "muted";
  label.append(muted);
  tile.append(video, label);
  // our own camera and screen float in a corner (self view); screens
  // first: they are what people are looking at
  const box = local ? $("self-view") : $("grid");
  if (screen) box.prepend(tile);
  else box.append(tile);
  layout();
  return tile;
}

function setMutedBadge(p) {
  const muted = [...p.sources.values()].filter((s) => s.muted && s.content !== "screen").map((s) => s.kind);
  p.tile.querySelector(".muted").textContent = muted.length ? `muted ${muted.join(" + ")}` : "";
  p.tile.classList.toggle("hand", p.hand);
  showPeople();
}

// ---- people -----------------------------------------------------------------

// The participant list: who is here, their microphone and camera, who is
// speaking, raised hands; a moderator's page also gets buttons to mute
// and remove each one (the server checks the room token, not this page).
function showPeople() {
  const list = $("people-list");
  if (!list) return;
  const rows = [];
  const row = (p, me) => {
    const li = document.createElement("li");
    li.dataset.participant = me ? state.me : p.id;
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = me ? `${state.name} (you)` : p.name;
    li.append(name);
    const kinds = me ? localStates() : [...p.sources.values()].filter((s) => s.content !== "screen");
    const badge = (text, cls) => {
      const b = document.createElement("span");
      b.className = `badge ${cls}`;
      b.textContent = text;
      li.append(b);
    };
    if ((me ? state.moderator : p.moderator)) badge("moderator", "role");
    if (me ? state.hand : p.hand) badge("hand raised", "hand");
    for (const k of ["audio", "video"]) {
      const s = kinds.find((s) => s.kind === k);
      if (!s) badge(k === "audio" ? "no mic" : "no camera", "off");
      else if (s.muted) badge(k === "audio" ? "mic muted" : "camera off", "off");
    }
    if (!me && state.speaker === p.id) badge("speaking", "speaking");
    if (!me && state.moderator) {
      for (const [label, action, kind] of [["Mute mic", "mute", "audio"], ["Stop camera", "mute", "video"], ["Remove", "remove", null]]) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = `moderate ${action}`;
        b.textContent = label;
        b.onclick = () => moderate(action, p.id, kind);
        li.append(b);
      }
    }
    return li;
  };
  if (state.me) rows.push(row(null, true));
  for (const p of state.participants.values()) rows.push(row(p, false));
  list.replaceChildren(...rows);
  $("people-count").textContent = String(rows.length);
}

// Our own tracks' states, as the list shows them.
function localStates() {
  return (state.local ? state.local.getTracks() : []).map((t) => ({ kind: t.kind, muted: !t.enabled }));
}

// A moderator's action on participant `id`; refused by the server with
// `forbidden` unless our room token makes us a moderator.
function moderate(action, id, kind) {
  if (action === "mute") send({ type: "mute_participant", participant: id, kind });
  else if (action === "remove") send({ type: "remove_participant", participant: id });
}
state.moderate = moderate;

function raiseHand(raised) {
  state.hand = raised;
  send({ type: "hand", raised });
  $("raise-hand").setAttribute("aria-pressed", String(raised));
  $("raise-hand").textContent = raised ? "Lower hand" : "Raise hand";
  showPeople();
}

function addParticipant(info) {
  if (state.participants.has(info.id)) return state.participants.get(info.id);
  const p = {
    id: info.id,
    name: info.name,
    moderator: !!info.moderator,
    hand: !!info.hand_raised,
    tile: makeTile(info.id, info.name, false),
    stream: new MediaStream(),
    sources: new Map(),
    screens: new Map(),
  };
  p.tile.dataset.participant = info.id;
  const video = p.tile.querySelector("video");
  video.muted = false;
  video.srcObject = p.stream;
  state.participants.set(info.id, p);
  for (const s of info.sources || []) addSource(info.id, s);
  showPeople();
  return p;
}

function addSource(participant, source) {
  const p = state.participants.get(participant);
  if (!p) return;
  const known = p.sources.get(source.id) || {};
  const s = { ...known, kind: source.kind, muted: source.muted, content: source.content || "camera", mid: source.mid ?? known.mid };
  p.sources.set(source.id, s);
  if (s.content === "screen" && s.kind === "video") showScreen(p, source.id, s);
  setMutedBadge(p);
  sendConstraints();
}

// A participant's shared screen: a tile of its own, on stage unless the
// user pinned something else. Its track arrives on the m-line `s.mid`.
function showScreen(p, sourceId, s) {
  let tile = p.screens.get(sourceId);
  if (!tile) {
    tile = makeTile(sourceId, `${p.name}'s screen`, false, true);
    tile.dataset.participant = p.id;
    tile.dataset.source = sourceId;
    p.screens.set(sourceId, tile);
    if (!state.pinned) pin(sourceId);
  }
  const t = s.mid != null && state.pc && state.pc.getTransceivers().find((t) => t.mid === s.mid);
  const track = t && t.receiver.track;
  const video = tile.querySelector("video");
  if (track && !(video.srcObject && video.srcObject.getTracks().includes(track))) {
    // it may have been taken for the camera before we knew it was a screen
    if (p.stream.getTracks().includes(track)) p.stream.removeTrack(track);
    video.srcObject = new MediaStream([track]);
    video.play().catch(() => {});
  }
}

// The source of `p` that arrives on m-line `mid`, if known.
function sourceOnMid(p, mid) {
  for (const [id, s] of p.sources) if (s.mid === mid) return [id, s];
  return [null, null];
}

function removeSource(participant, sourceId) {
  const p = state.participants.get(participant);
  const s = p && p.sources.get(sourceId);
  if (!s) return;
  p.sources.delete(sourceId);
  const t = state.pc && state.pc.getTransceivers().find((t) => t.mid === s.mid);
  if (t && t.receiver.track) p.stream.removeTrack(t.receiver.track);
  removeScreenTile(p, sourceId);
  setMutedBadge(p);
}

function removeScreenTile(p, sourceId) {
  const tile = p.screens.get(sourceId);
  if (!tile) return;
  tile.remove();
  p.screens.delete(sourceId);
  if (state.pinned === sourceId) pin(null);
  else layout();
}

function removeParticipant(id) {
  const p = state.participants.get(id);
  if (!p) return;
  for (const sourceId of [...p.screens.keys()]) removeScreenTile(p, sourceId);
  p.tile.remove();
  state.participants.delete(id);
  showPeople();
  layout();
}

// Tell the server how tall each remote video is drawn, so it sends the
// smallest simulcast layer that still looks sharp, and which one is pinned,
// so that it gets the bandwidth first.
let constraintsTimer = null;
function sendConstraints() {
  clearTimeout(constraintsTimer);
  constraintsTimer = setTimeout(() => {
    const max_height = {};
    const selected = [];
    const drawn = (tile) => state.heightOverride ?? Math.max(1, Math.round(tile.clientHeight * (window.devicePixelRatio || 1)));
    for (const p of state.participants.values()) {
      for (const [id, s] of p.sources) {
        if (s.kind !== "video") continue;
        const tile = p.screens.get(id) || p.tile;
        max_height[id] = drawn(tile);
        if (tile.dataset.key === state.pinned) selected.push(id);
      }
    }
    if (Object.keys(max_height).length) send({ type: "constraints", max_height, selected, on_stage: selected });
  }, 100);
}

// A click on a tile pins it: shown large (on stage), served first.
function pin(key) {
  state.pinned = key;
  layout();
}

// ---- quality ------------------------------------------------------------------

// Every QUALITY_MS, each remote video's tile says what arrives of it
// (getStats: resolution, frame rate, loss since the last look, the round
// trip to the server) and grades it: good, fair or poor.
const QUALITY_MS = 2000;
async function showQuality() {
  const pc = state.pc;
  if (!pc || state.left || pc.connectionState !== "connected") return;
  const stats = await pc.getStats();
  const byMid = new Map();
  let rtt = null;
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.mid !== undefined) byMid.set(r.mid, r);
    if (r.type === "transport" && r.selectedCandidatePairId) {
      const pair = stats.get(r.selectedCandidatePairId);
      if (pair && pair.currentRoundTripTime !== undefined) rtt = Math.round(pair.currentRoundTripTime * 1000);
    }
  });
  const previous = state.quality || {};
  const now = {};
  for (const p of state.participants.values()) {
    for (const [id, s] of p.sources) {
      if (s.kind !== "video") continue;
      const r = byMid.get(s.mid);
      if (!r) continue;
      const q = {
        width: r.frameWidth || 0,
        height: r.frameHeight || 0,
        fps: Math.round(r.framesPerSecond || 0),
        rtt_ms: rtt,
        received: r.packetsReceived || 0,
        lost: Math.max(0, r.packetsLost || 0),
      };
      const before = previous[id];
      const got = before ? q.received - before.received : 0;
      const lost = before ? Math.max(0, q.lost - before.lost) : 0;
      q.loss = got + lost > 0 ? lost / (got + lost) : 0;
      const screen = s.content === "screen";
      q.grade =
        q.loss > 0.05 || (rtt ?? 0) > 400 ? "poor" : q.loss > 0.01 || (rtt ?? 0) > 200 || (!screen && q.fps > 0 && q.fps < 12) ? "fair" : "good";
      now[id] = q;
      const tile = p.screens.get(id) || p.tile;
      let badge = tile.querySelector(".quality");
      if (!badge) {
        badge = document.createElement("span");
        badge.className = "quality";
        tile.append(badge);
      }
      badge.className = `quality ${s.muted || q.fps === 0 ? "paused" : q.grade}`;
      badge.textContent = q.fps === 0 ? "no video" : `${q.height}p · ${q.fps} fps`;
      badge.title = `${q.width}×${q.height}, ${q.fps} frames/s, ${(q.loss * 100).toFixed(1)} % lost, round trip ${rtt ?? "?"} ms`;
      if (q.loss > 0.01) badge.textContent += ` · ${Math.round(q.loss * 100)} % loss`;
      if ((rtt ?? 0) > 200) badge.textContent += ` · ${rtt} ms`;
    }
  }
  state.quality = now;
}
setInterval(() => showQuality().catch(() => {}), QUALITY_MS);

// ---- layout -------------------------------------------------------------------

const GAP = 8;
// The speaker view's strip of small tiles: this tall at most.
const STRIP_MAX = 140;

// The largest 16:9 tile for `n` tiles in a `w`×`h` area, and its columns.
function bestFit(n, w, h) {
  let best = { cols: 1, width: 0 };
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(n / cols);
    const width = Math.min((w - GAP * (cols - 1)) / cols, ((h - GAP * (rows - 1)) / rows) * (16 / 9));
    if (width > best.width) best = { cols, width: Math.floor(width) };
  }
  return best;
}

// The tile on stage: the pinned one, else (speaker view) a shared screen,
// the dominant speaker, or the first.
function stageTile(tiles) {
  const pinned = tiles.find((t) => t.dataset.key === state.pinned);
  if (pinned) return pinned;
  if (state.view !== "speaker") return null;
  return tiles.find((t) => t.classList.contains("screen")) || tiles.find((t) => t.dataset.key === state.speaker) || tiles[0] || null;
}

// Sizes the remote tiles to fill the grid: the tile view fits them all
// as large as they go (a three-way call at 1280×720 gets two tiles of
// 355 px in a row: the 360-line layer); the speaker view puts one on
// stage and the others in a strip. The server is told the sizes
// (`constraints`) for the layers.
function layout() {
  const grid = $("grid");
  if (grid.hidden) return;
  // the panels over the grid keep clear of the buttons, however many
  // rows those wrap into
  document.documentElement.style.setProperty("--controls-h", `${$("controls").offsetHeight}px`);
  const w = grid.clientWidth - 2 * GAP;
  const h = grid.clientHeight - 2 * GAP;
  const tiles = [...grid.querySelectorAll(":scope > .tile")];
  const stage = stageTile(tiles);
  grid.classList.toggle("speaker", !!stage);
  $("self-view").classList.toggle("alone", tiles.length === 0);
  if (stage) {
    const others = tiles.filter((t) => t !== stage);
    const strip = others.length ? Math.min(STRIP_MAX, Math.floor(h * 0.22)) : 0;
    stage.style.width = "100%";
    stage.style.height = `${Math.max(90, h - strip - (strip ? GAP : 0))}px`;
    for (const t of others) {
      t.style.height = "";
      t.style.width = `${Math.floor((strip * 16) / 9)}px`;
    }
  } else {
    const { width } = bestFit(tiles.length, w, h);
    for (const t of tiles) {
      t.style.height = "";
      t.style.width = `${width}px`;
    }
  }
  for (const t of tiles) t.classList.toggle("on-stage", t === stage);
  sendConstraints();
}

function setView(view) {
  state.view = view;
  $("view-toggle").textContent = view === "speaker" ? "Tile view" : "Speaker view";
  $("view-toggle").setAttribute("aria-pressed", String(view === "speaker"));
  layout();
}

// For tests and the console: draw every remote video as if it were `h`
// pixels tall (null: back to the tile sizes).
state.setMaxHeight = (h) => {
  state.heightOverride = h;
  sendConstraints();
};

// ---- media ----------------------------------------------------------------

// The TURN servers the server hands out (`joined`, `resumed`: fresh
// credentials) for networks that let no UDP through to it; taken before the
// first offer gathers candidates, and by later ICE restarts.
function useIceServers(list) {
  state.iceServers = (list || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
  if (!state.pc || state.iceServers.length === 0) return;
  try {
    state.pc.setConfiguration({ ...state.pc.getConfiguration(), iceServers: state.iceServers });
  } catch (e) {
    console.warn(`TURN servers not taken: ${e.message}`);
  }
}

function newPeerConnection() {
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require", iceServers: state.iceServers || [] });
  pc.onconnectionstatechange = () => {
    // a short history, for people (and tests) asking what happened
    state.connectionLog = [...(state.connectionLog || []).slice(-19), [Date.now(), pc.connectionState]];
    showConnection();
    watchConnection(pc);
  };
  pc.ontrack = (ev) => {
    const participant = ev.streams[0] && ev.streams[0].id;
    const p = state.participants.get(participant);
    if (!p) return;
    const [sourceId, s] = sourceOnMid(p, ev.transceiver.mid);
    if (s && s.content === "screen") return showScreen(p, sourceId, s);
    for (const old of p.stream.getTracks().filter((t) => t.kind === ev.track.kind)) p.stream.removeTrack(old);
    p.stream.addTrack(ev.track);
    ev.track.onended = () => p.stream.removeTrack(ev.track);
    const video = p.tile.querySelector("video");
    video.srcObject = p.stream;
    video.play().catch(() => {});
  };
  return pc;
}

async function publish() {
  const pc = state.pc;
  const [audio] = state.local.getAudioTracks();
  const [video] = state.local.getVideoTracks();
  const a = audio && pc.addTransceiver(audio, { direction: "sendonly", streams: [state.local] });
  // ?simulcast=0 sends one encoding (a weak machine, or a test that wants
  // every receiver to get the same stream)
  const single = new URLSearchParams(location.search).get("simulcast") === "0";
  const encodings = single ? [{ maxBitrate: LAYERS[LAYERS.length - 1].maxBitrate }] : LAYERS;
  const v = video && pc.addTransceiver(video, { direction: "sendonly", streams: [state.local], sendEncodings: encodings });
  // ?codec=h264 (or vp9, av1): send the camera with that codec only (the
  // server forwards what the publisher sends; a receiver that cannot decode
  // it is told, docs/signalling.md)
  const codec = new URLSearchParams(location.search).get("codec");
  if (v && codec) preferCodec(v, codec);
  // a line to receive on for each source `joined` told of: the server's
  // answer fills them, so their media flows as soon as ours connects, with
  // no offer round trip first (docs/signalling.md "Media from the first
  // answer"); and without a camera or a microphone, still one of that kind
  // (the server fills it with the next source, "Receiving without
  // publishing")
  const known = { audio: 0, video: 0 };
  for (const p of state.participants.values()) for (const s of p.sources.values()) if (s.kind in known) known[s.kind] += 1;
  const receive = { audio: Math.max(known.audio, audio ? 0 : 1), video: Math.max(known.video, video ? 0 : 1) };
  for (const kind of ["audio", "video"]) for (let i = 0; i < receive[kind]; i++) pc.addTransceiver(kind, { direction: "recvonly" });
  // a share that was on when the media moved (or we joined again) goes on
  if (state.screen) {
    state.screenTransceiver = pc.addTransceiver(state.screen.track, { direction: "sendonly", streams: [state.screen.stream], sendEncodings: [SCREEN_ENCODING] });
    state.screen.transceiver = state.screenTransceiver;
  }
  await offer();
  state.audioMid = a ? a.mid : null;
  state.videoMid = v ? v.mid : null;
}

// Offers only `codec` (and its retransmission entries) on transceiver `t`.
function preferCodec(t, codec) {
  const caps = RTCRtpReceiver.getCapabilities("video");
  const send = RTCRtpSender.getCapabilities("video");
  // what this browser both sends and receives (either list is accepted)
  const both = (c) => send && send.codecs.some((x) => x.mimeType === c.mimeType && (x.sdpFmtpLine || "") === (c.sdpFmtpLine || ""));
  const wanted = caps ? caps.codecs.filter((c) => c.mimeType.toLowerCase() === `video/${codec.toLowerCase()}` && both(c)) : [];
  if (wanted.length === 0) {
    showNotice(`This browser cannot send ${codec}: sending its default codec.`);
    return;
  }
  const rtx = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
  t.setCodecPreferences([...wanted, ...rtx]);
}

// The network changed (a new address, Wi-Fi to cable): the connection goes
// "disconnected" or "failed". Restart ICE on the same session (new
// credentials, same DTLS and keys) instead of leaving a frozen call.
function watchConnection(pc) {
  if (pc !== state.pc || state.left) return;
  if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
    restartIce();
  }
}

function restartIce(why) {
  // at most one per RESTART_RETRY_MS (a restart takes a round trip and a
  // nomination); while media stays away, again: Chrome may gather the
  // first restart's candidates before it knows of the new network (its
  // list follows the kernel's about 2 s late). Restarts in a row cost
  // nothing: the server answers the earlier ones' checks too
  if (Date.now() - (state.lastIceRestart || 0) < RESTART_RETRY_MS) return;
  state.lastIceRestart = Date.now();
  if (why && state.resumeToken && !state.reconnectStarted) {
    // media stopped: our address may have changed under the signalling
    // connection too, so do not wait for a ping to tell: resume on a new
    // one now (the server closes the old one, 4009), and the offer below
    // goes out on it
    openSignalling({ type: "resume", token: state.resumeToken });
  } else {
    checkSignalling();
  }
  state.iceRestarts = (state.iceRestarts || 0) + 1;
  console.warn(`${why || `connection ${state.pc.connectionState}`}: restarting ICE (${state.iceRestarts})`);
  state.pc.restartIce();
  serially(offer);
}

// Chrome calls a connection "disconnected" only ~5 s after its path broke.
// Remote audio never pauses (silence and muted tracks still send packets),
// so 1.5 s without any packet from anyone while others publish means our
// path broke: restart ICE then. Chrome checks the new path at once but
// keeps its old pair until nothing arrived on it for 2.5 s, so media is
// back about 2.5 s after the change whether we ask at 0.75 s or 1.5 s; and
// shorter silences happen without any network change on a busy machine
// (four browsers of a test restarting at once after their browser process
// was held up for most of a second).
const MEDIA_SILENCE_MS = 1500;
// While media stays away after a restart, the next one comes this soon,
// then at doubling gaps up to RESTART_GAP_MAX_MS (a network that is really
// gone is not hammered).
const RESTART_RETRY_MS = 600;
const RESTART_GAP_MAX_MS = 5000;
function silenceAllowed() {
  const n = state.silentRestarts || 0;
  if (n === 0) return MEDIA_SILENCE_MS;
  return Math.min(RESTART_GAP_MAX_MS, RESTART_RETRY_MS * 2 ** Math.max(0, n - 2));
}
// A look at the stats this much later than planned means this tab itself
// was held up (a busy machine): the silence it measured says nothing about
// the path, and the watch starts over.
const WATCH_MS = 250;
const WATCH_LATE_MS = 2 * WATCH_MS;
async function watchMedia() {
  const pc = state.pc;
  if (!pc || state.left || pc.connectionState !== "connected") return;
  const publishing = [...state.participants.values()].some((p) => p.sources.size > 0);
  if (!publishing) return;
  let packets = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp") packets += r.packetsReceived || 0;
  });
  const now = Date.now();
  const late = now - (state.lastWatch || now) > WATCH_MS + WATCH_LATE_MS;
  state.lastWatch = now;
  // judged only once media has flowed on this connection: during setup and
  // renegotiations nothing may arrive for a while
  if (late || packets === 0 || packets !== state.inboundPackets || !state.inboundSince || pc !== state.statsPc) {
    // media flowed, or a new connection starts: restarts count from zero
    if (packets !== state.inboundPackets || pc !== state.statsPc) state.silentRestarts = 0;
    Object.assign(state, { inboundPackets: packets, inboundSince: now, statsPc: pc });
  } else if (now - state.inboundSince >= silenceAllowed() && pc === state.pc) {
    const silent = now - state.inboundSince;
    state.inboundSince = now;
    state.silentRestarts = (state.silentRestarts || 0) + 1;
    restartIce(`no media for ${silent} ms`);
  }
}
setInterval(() => watchMedia().catch(() => {}), WATCH_MS);

async function offer() {
  const pc = state.pc;
  state.offering = true;
  state.offersSent = (state.offersSent || 0) + 1;
  await pc.setLocalDescription(await pc.createOffer());
  // which line carries our screen (docs/signalling.md, `offer.content`)
  const t = state.screen && state.screen.transceiver;
  const content = t && t.mid != null ? { content: { [t.mid]: "screen" } } : {};
  send({ type: "offer", sdp: pc.localDescription.sdp, ...content });
}

// ---- screen sharing -------------------------------------------------------

async function startShare() {
  if (state.screen || !state.pc) return;
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia(SCREEN_CAPTURE);
  } catch (e) {
    // the person cancelled the picker, or the browser refused
    if (e.name !== "NotAllowedError") showNotice(`Screen sharing failed: ${e.message}`);
    return;
  }
  const [track] = stream.getVideoTracks();
  track.contentHint = "detail";
  const tile = makeTile("my-screen", "Your screen", true, true);
  tile.querySelector("video").srcObject = stream;
  state.screen = { track, stream, transceiver: null, tile };
  // the browser's own "Stop sharing" ends the track
  track.addEventListener("ended", stopShare);
  $("share-screen").setAttribute("aria-pressed", "true");
  $("share-screen").textContent = "Stop sharing";
  serially(async () => {
    const pc = state.pc;
    // the line of an earlier share is used again: no m-line per share
    let t = state.screenTransceiver;
    if (t && pc.getTransceivers().includes(t) && !t.stopped) {
      await t.sender.replaceTrack(track);
      t.sender.setStreams(stream);
      t.direction = "sendonly";
    } else {
      t = pc.addTransceiver(track, { direction: "sendonly", streams: [stream], sendEncodings: [SCREEN_ENCODING] });
      state.screenTransceiver = t;
    }
    if (state.screen && state.screen.track === track) state.screen.transceiver = t;
    await offer();
  });
}

function stopShare() {
  const s = state.screen;
  if (!s) return;
  state.screen = null;
  s.track.removeEventListener("ended", stopShare);
  s.track.stop();
  s.tile.remove();
  layout();
  $("share-screen").setAttribute("aria-pressed", "false");
  $("share-screen").textContent = "Share screen";
  serially(async () => {
    const t = s.transceiver;
    if (state.left || !t || !state.pc || !state.pc.getTransceivers().includes(t)) return;
    // the line stays for the next share; the server sees it stop sending
    // and tells the others the screen is gone
    await t.sender.replaceTrack(null);
    t.direction = "inactive";
    await offer();
  });
}

async function onAnswer(sdp) {
  if (state.pc.signalingState !== "have-local-offer") return;
  await state.pc.setRemoteDescription({ type: "answer", sdp });
  state.offering = false;
  if (state.offerAgain) {
    state.offerAgain = false;
    await offer();
  }
}

async function onOffer(sdp) {
  const pc = state.pc;
  if (pc.signalingState === "have-local-offer") {
    // glare: we are the polite side; ours goes again after this answer
    await pc.setLocalDescription({ type: "rollback" });
    state.offering = false;
    state.offerAgain = true;
  }
  await pc.setRemoteDescription({ type: "offer", sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  send({ type: "answer", sdp: pc.localDescription.sdp });
  if (state.offerAgain && pc.signalingState === "stable") {
    state.offerAgain = false;
    await offer();
  }
  sendConstraints();
}

// ---- signalling -----------------------------------------------------------

function onMessage(msg) {
  switch (msg.type) {
    case "resumed":
      useIceServers(msg.ice_servers);
      state.resumedAt = Date.now();
      state.reconnectStarted = null;
      state.attempts = 0;
      state.resumes = (state.resumes || 0) + 1;
      showConnection();
      // an offer sent while the connection was down never arrived: again
      if (state.pc && state.pc.signalingState === "have-local-offer") {
        send({ type: "offer", sdp: state.pc.localDescription.sdp });
      }
      // media may have lost its path too (a new address): check it
      if (state.pc) watchConnection(state.pc);
      break;
    case "joined":
      Object.assign(state, { redirectsInARow: 0, joinRetries: 0, joinRetryStarted: null });
      state.me = msg.id;
      state.moderator = !!msg.moderator;
      state.resumeToken = msg.resume_token;
      useIceServers(msg.ice_servers);
      for (const p of msg.participants) addParticipant(p);
      // the room's last messages, for a late joiner (shown once: a rejoin
      // on the same page has them already)
      if (!state.chat.length) for (const line of msg.chat || []) addChat(line);
      $("chat").hidden = false;
      showPeople();
      serially(publish);
      break;
    case "answer":
      serially(() => onAnswer(msg.sdp));
      break;
    case "offer":
      serially(() => onOffer(msg.sdp));
      break;
    case "participant_joined":
      addParticipant(msg.participant);
      break;
    case "participant_left":
      if (state.pinned === msg.id) state.pinned = null;
      removeParticipant(msg.id);
      break;
    case "source_added":
      addSource(msg.participant, msg.source);
      break;
    case "source_removed":
      removeSource(msg.participant, msg.source);
      break;
    case "mute_state": {
      const p = state.participants.get(msg.participant);
      const s = p && p.sources.get(msg.source);
      if (s) {
        s.muted = msg.muted;
        setMutedBadge(p);
      }
      break;
    }
    case "dominant_speaker":
      state.speaker = msg.participant;
      for (const p of state.participants.values()) p.tile.classList.toggle("speaking", p.id === msg.participant);
      showPeople();
      if (state.view === "speaker" && !state.pinned) layout();
      break;
    case "hand": {
      const p = state.participants.get(msg.participant);
      if (p) {
        p.hand = msg.raised;
        setMutedBadge(p);
      }
      break;
    }
    case "force_muted":
      // a moderator muted us: the server no longer forwards the track;
      // ours goes quiet too, and unmuting is ours to do
      forceMuted(msg);
      break;
    case "removed":
      removedFromRoom(msg);
      break;
    case "chat":
      addChat(msg);
      break;
    case "pong":
      state.lastPong = Date.now();
      break;
    case "media_moved":
      // the media server carrying our call is gone or emptying: the same
      // participant starts its media over on another, on this connection
      serially(() => moveMedia(msg.reason));
      break;
    case "redirect":
      // another server of the cluster holds the room: join there
      redirectTo(msg);
      break;
    case "going_away":
      state.goingAway = msg;
      showNotice(`The server is shutting down: this call ends within ${msg.within_s} s.`);
      break;
    case "error":
      if (msg.code === "bad_state" && state.offering) {
        // our offer crossed the server's: offer again once that is answered
        state.offering = false;
        state.offerAgain = true;
      } else if (msg.code === "resume_failed") {
        // the server no longer knows us (we were away too long, or it
        // restarted without our state): the same room as a new participant
        rejoin();
      } else if (msg.code === "media_lost") {
        // the server could not give our media back (it restarted): a new
        // participant on a new connection, same camera
        rejoin();
      } else if (msg.code === "forbidden") {
        // a moderator's action without a moderator's token: said, the call
        // goes on
        state.refusals = [...(state.refusals || []), msg.message];
        showNotice(`Not allowed: ${msg.message}`);
      } else if (msg.code === "limit" && state.me) {
        // a chat message over our budget: say so beside the chat, the call
        // is not affected
        chatNotice(`Not sent: ${msg.message}`);
      } else if (msg.code === "room_unavailable" && !state.me) {
        // the room cannot open now (the server that held it stopped and
        // its claim has not run out, or the cluster's registry is away):
        // try again shortly
        retryJoin(msg.message);
      } else {
        fail(`server: ${msg.code}: ${msg.message}`);
      }
      break;
    default:
      console.warn("unknown server message", msg);
  }
}

async function join(room, name) {
  state.room = room;
  state.name = name;
  $("room-name").textContent = room;
  $("join").hidden = true;
  $("grid").hidden = false;
  $("controls").hidden = false;
  const want = wanted();
  if (want.none) {
    // the form's box: neither, whatever the preview had
    stopPreview();
    state.local = new MediaStream();
  } else if (state.preview) {
    // what the pre-join screen showed is what we send
    state.local = state.preview;
    state.preview = null;
    $("preview").srcObject = null;
  } else {
    state.local = new MediaStream();
    if (want.audio || want.video) {
      setStatus("starting camera and microphone…");
      try {
        state.local = await openDevices(want);
      } catch (e) {
        // no devices, or not allowed: join anyway, to watch and listen
        showNotice(`No camera or microphone (${e.message}): you can see and hear the others, they cannot see or hear you.`);
      }
    }
  }
  $("mute-audio").hidden = state.local.getAudioTracks().length === 0;
  $("mute-video").hidden = state.local.getVideoTracks().length === 0;
  listDevices();
  const mine = makeTile("me", `${name} (you)`, true);
  // (a video element on a stream with no tracks never loads, and holds the
  // page's load event up with it)
  if (state.local.getTracks().length > 0) mine.querySelector("video").srcObject = state.local;
  state.pc = newPeerConnection();
  // ?region=eu-west: a new room goes to a media server in that region
  state.region = new URLSearchParams(location.search).get("region") || undefined;
  // ?token=<JWT>: the room token, when the server asks for one (a
  // moderator's lets this page mute and remove others)
  state.token = new URLSearchParams(location.search).get("token") || undefined;
  openSignalling(joinMessage());
  new ResizeObserver(layout).observe($("grid"));
  layout();
}

function joinMessage() {
  return { type: "join", room: state.room, name: state.name, region: state.region, token: state.token };
}

// ---- devices ----------------------------------------------------------------

// What to capture: ?video=0 joins with the microphone only, ?audio=0 with
// the camera only, ?devices=0 (or the form's box) with neither: watching
// and listening needs no devices. ?camera=640x360 asks for another camera
// size than 1280x720.
function wanted() {
  const query = new URLSearchParams(location.search);
  const none = query.get("devices") === "0" || $("no-devices").checked;
  return { none, video: !none && query.get("video") !== "0", audio: !none && query.get("audio") !== "0" };
}

function videoConstraints(deviceId) {
  const [width, height] = (new URLSearchParams(location.search).get("camera") || "1280x720").split("x").map(Number);
  const c = { width: { ideal: width || 1280 }, height: { ideal: height || 720 }, frameRate: { ideal: 30 } };
  if (deviceId) c.deviceId = { exact: deviceId };
  else if (localStorage.getItem("switchyard.camera")) c.deviceId = { ideal: localStorage.getItem("switchyard.camera") };
  return c;
}

function audioConstraints(deviceId) {
  if (deviceId) return { deviceId: { exact: deviceId } };
  const saved = localStorage.getItem("switchyard.mic");
  return saved ? { deviceId: { ideal: saved } } : true;
}

// The camera and microphone `want` asks for (the ones picked last time,
// when they are still there).
function openDevices(want) {
  return navigator.mediaDevices.getUserMedia({ audio: want.audio && audioConstraints(), video: want.video && videoConstraints() });
}

// The pre-join screen: a live preview of what joining will send, and the
// pickers (labels are only known once the page may use the devices).
async function startPreview() {
  const want = wanted();
  if (!navigator.mediaDevices || want.none || !(want.audio || want.video)) return;
  try {
    const stream = await openDevices(want);
    if (state.room) {
      // joined meanwhile (the join opened its own): not needed
      for (const t of stream.getTracks()) t.stop();
      return;
    }
    state.preview = stream;
    $("preview").srcObject = stream;
    $("preview-note").textContent = "";
  } catch (e) {
    $("preview-note").textContent = `No camera or microphone (${e.message}): you can still join to watch and listen.`;
  }
  await listDevices();
}

function stopPreview() {
  if (state.preview) for (const t of state.preview.getTracks()) t.stop();
  state.preview = null;
  $("preview").srcObject = null;
}

// Fills every camera / microphone picker, the device in use selected.
async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const stream = state.preview || state.local;
  for (const [kind, ids] of [["videoinput", ["camera-select", "call-camera"]], ["audioinput", ["mic-select", "call-mic"]]]) {
    const track = stream && stream.getTracks().find((t) => t.kind === (kind === "videoinput" ? "video" : "audio"));
    const current = track && track.getSettings().deviceId;
    const list = devices.filter((d) => d.kind === kind && d.deviceId);
    for (const id of ids) {
      const select = $(id);
      select.replaceChildren(
        ...list.map((d, i) => {
          const o = document.createElement("option");
          o.value = d.deviceId;
          o.textContent = d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`;
          o.selected = d.deviceId === current;
          return o;
        }),
      );
      // in the call, a picker only for what we send (picking a device for
      // a kind we do not send would need a new m-line)
      select.hidden = list.length === 0 || (id.startsWith("call-") && !track);
    }
  }
}

// A picked device: in the pre-join screen the preview follows; in a call
// the new track replaces the old on the same sender (`replaceTrack`: no
// renegotiation, the others' decoders carry on).
async function useDevice(kind, deviceId) {
  localStorage.setItem(kind === "video" ? "switchyard.camera" : "switchyard.mic", deviceId);
  const stream = state.preview || state.local;
  if (!stream) return;
  const old = stream.getTracks().find((t) => t.kind === kind);
  const constraints = kind === "video" ? { video: videoConstraints(deviceId) } : { audio: audioConstraints(deviceId) };
  let track;
  try {
    [track] = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks();
  } catch (e) {
    // some phones open one camera at a time: free the old one and retry
    if (!old || e.name !== "NotReadableError") return showNotice(`Could not switch to that device: ${e.message}`);
    old.stop();
    try {
      [track] = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks();
    } catch (e2) {
      return showNotice(`Could not switch to that device: ${e2.message}`);
    }
  }
  if (old) track.enabled = old.enabled;
  const mid = kind === "audio" ? state.audioMid : state.videoMid;
  const t = stream === state.local && mid != null && state.pc && state.pc.getTransceivers().find((t) => t.mid === mid);
  if (t) await t.sender.replaceTrack(track);
  if (old) {
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(track);
  state.deviceSwitches = (state.deviceSwitches || 0) + 1;
  await listDevices();
}

// One signalling connection; `first` is `join`, or `resume` after a drop.
// The URL names the room (?room=), so that a proxy in front of several
// servers (shards) can send every participant of a room to the same one;
// a `redirect` names another server's URL to use instead.
function openSignalling(first) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = new URL(state.signallingUrl || `${scheme}://${location.host}/ws`);
  url.searchParams.set("room", state.room);
  const ws = new WebSocket(url.href);
  state.ws = ws;
  ws.onopen = () => {
    showConnection();
    send(first);
    // after the join or resume, in order
    for (const msg of state.outbox || []) send(msg);
    state.outbox = [];
  };
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return fail("server sent something that is not JSON");
    }
    onMessage(msg);
  };
  ws.onclose = (ev) => {
    if (ws !== state.ws) return;
    showConnection();
    state.closeCode = ev.code;
    if (state.left) return;
    if (ev.code === 1001) {
      // the server shut down: say so instead of a frozen "connected"
      if (state.pc) state.pc.close();
      showNotice("The server shut down and ended this call.");
      setStatus("server shut down", "bad");
    } else if (state.resumeToken && (state.reconnectStarted || [1000, 4001, 4008, 4009, 1009].indexOf(ev.code) < 0)) {
      // the connection dropped (network change, server restart): carry on;
      // while reconnecting, a server still starting closes us too: again
      reconnect();
    } else {
      fail(`signalling connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`);
    }
  };
  const keepalive = setInterval(() => send({ type: "ping" }), 20_000);
  ws.addEventListener("close", () => clearInterval(keepalive));
}

// After a network change the signalling connection may be dead without
// knowing it (its TCP went out from an address that is gone): a ping that
// gets no pong within 3 s replaces it with a resumed one.
function checkSignalling() {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !state.resumeToken || state.checking) return;
  state.checking = true;
  const asked = Date.now();
  send({ type: "ping" });
  setTimeout(() => {
    state.checking = false;
    if (ws === state.ws && !state.left && !(state.lastPong >= asked)) {
      ws.onclose = null;
      try {
        ws.close();
      } catch {}
      reconnect();
    }
  }, 3000);
}

// Comes back as the same participant with the token from `joined`, trying
// for as long as the server keeps a dropped participant (30 s by default).
function reconnect() {
  const started = state.reconnectStarted || Date.now();
  state.reconnectStarted = started;
  if (Date.now() - started > 30_000) {
    state.reconnectStarted = null;
    return fail("lost the connection to the server; reload to join again");
  }
  state.reconnects = (state.reconnects || 0) + 1;
  // attempts since the last success: the backoff starts small each time
  state.attempts = (state.attempts || 0) + 1;
  setStatus("reconnecting…");
  // the server a redirect named may be gone: after two failed tries,
  // through the entry point again
  if (state.attempts > 2) state.signallingUrl = null;
  const delay = Math.min(4000, 250 * 2 ** Math.min(4, state.attempts - 1));
  setTimeout(() => openSignalling({ type: "resume", token: state.resumeToken }), delay);
}

// `media_moved`: a new peer connection, the same signalling connection,
// participant id and local tracks. Sources are announced again as the
// others publish on the new media server; until then their tiles wait.
async function moveMedia(reason) {
  state.moves = (state.moves || 0) + 1;
  console.warn(`media moving (${state.moves}): ${reason}`);
  if (state.pc) state.pc.close();
  for (const p of state.participants.values()) {
    for (const t of p.stream.getTracks()) p.stream.removeTrack(t);
    p.sources.clear();
    setMutedBadge(p);
  }
  Object.assign(state, { offering: false, offerAgain: false, silentRestarts: 0 });
  state.pc = newPeerConnection();
  showConnection();
  await publish();
}

// Drops the current signalling connection without reacting to its close.
function dropSignalling() {
  const old = state.ws;
  state.ws = null;
  if (old) {
    old.onclose = null;
    old.close();
  }
}

// `redirect`: the join goes to the server that holds the room. More than
// three in a row without a join wait and retry (see retryJoin).
function redirectTo(msg) {
  state.redirects = (state.redirects || 0) + 1;
  state.redirectsInARow = (state.redirectsInARow || 0) + 1;
  // servers disagreeing (one just stopped and its record has not run out):
  // wait and try again through the entry point
  if (state.redirectsInARow > 3) return retryJoin(`redirected ${state.redirectsInARow} times in a row`);
  console.warn(`room ${msg.room} is on ${msg.shard}: ${msg.url}`);
  dropSignalling();
  state.signallingUrl = msg.url;
  openSignalling(joinMessage());
}

// `room_unavailable` before we joined: again after 1 s, 2 s, then every
// 3 s, for up to a minute.
function retryJoin(why) {
  state.joinRetryStarted = state.joinRetryStarted || Date.now();
  if (Date.now() - state.joinRetryStarted > 60_000) return fail(`the room could not open: ${why}`);
  state.joinRetries = (state.joinRetries || 0) + 1;
  setStatus("the room is opening, please wait…");
  dropSignalling();
  // the entry point may send us to another server now
  state.signallingUrl = null;
  const delay = Math.min(3000, 1000 * state.joinRetries);
  setTimeout(() => openSignalling(joinMessage()), delay);
}

// Joins again as a new participant: a fresh peer connection and signalling
// connection, the same room, name and local tracks.
function rejoin() {
  state.rejoins = (state.rejoins || 0) + 1;
  console.warn(`rejoining (${state.rejoins})`);
  dropSignalling();
  // through the entry point again: the server we were sent to may be gone
  state.signallingUrl = null;
  if (state.pc) state.pc.close();
  for (const id of [...state.participants.keys()]) removeParticipant(id);
  Object.assign(state, { me: null, resumeToken: null, offering: false, offerAgain: false, pinned: null, outbox: [] });
  state.pc = newPeerConnection();
  setStatus("joining again…");
  openSignalling(joinMessage());
}

function leave() {
  state.left = true;
  send({ type: "leave" });
  if (state.ws) state.ws.close();
  if (state.pc) state.pc.close();
  if (state.local) for (const t of state.local.getTracks()) t.stop();
  stopShare();
  for (const id of [...state.participants.keys()]) removeParticipant(id);
  for (const tile of $("grid").querySelectorAll(".tile")) tile.remove();
  $("controls").hidden = true;
  $("chat").hidden = true;
  $("people").hidden = true;
  setStatus("you left the room");
}

function toggle(button, kind, mid) {
  const track = state.local && state.local.getTracks().find((t) => t.kind === kind);
  if (!track) return;
  setLocalMuted(kind, track.enabled);
  if (mid !== null) send({ type: "mute", mid, muted: !track.enabled });
}

function setLocalMuted(kind, muted) {
  const track = state.local && state.local.getTracks().find((t) => t.kind === kind);
  if (!track) return;
  track.enabled = !muted;
  $(kind === "audio" ? "mute-audio" : "mute-video").setAttribute("aria-pressed", String(muted));
  showPeople();
}

function forceMuted(msg) {
  const kind = msg.kind;
  if (state.screen && state.screen.transceiver && state.screen.transceiver.mid === msg.mid) stopShare();
  else setLocalMuted(kind, true);
  state.forceMuted = [...(state.forceMuted || []), msg];
  showNotice(`${msg.name} (moderator) turned off your ${kind === "audio" ? "microphone" : "camera"}. Turn it on again when you want to be ${kind === "audio" ? "heard" : "seen"}.`);
}

// A moderator removed us: the call is over for this page (no reconnect).
function removedFromRoom(msg) {
  state.removedBy = msg.name;
  leave();
  showNotice(`${msg.name} (moderator) removed you from the room.`);
  setStatus("removed from the room", "bad");
}

// ---- page -----------------------------------------------------------------

function start() {
  const params = new URLSearchParams(location.search);
  const room = decodeURIComponent(location.pathname.slice(1));
  const savedName = localStorage.getItem("switchyard.name") || "";
  $("room").value = room;
  $("name").value = params.get("name") || savedName;
  $("join").onsubmit = (ev) => {
    ev.preventDefault();
    const r = $("room").value.trim();
    const n = $("name").value.trim();
    localStorage.setItem("switchyard.name", n);
    if (r !== room) {
      location.href = `/${encodeURIComponent(r)}?name=${encodeURIComponent(n)}`;
      return;
    }
    join(r, n);
  };
  $("mute-audio").onclick = (ev) => toggle(ev.currentTarget, "audio", state.audioMid);
  $("mute-video").onclick = (ev) => toggle(ev.currentTarget, "video", state.videoMid);
  $("share-screen").hidden = !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  $("share-screen").onclick = () => (state.screen ? stopShare() : startShare());
  $("leave").onclick = leave;
  $("raise-hand").onclick = () => raiseHand(!state.hand);
  $("view-toggle").onclick = () => setView(state.view === "speaker" ? "tiles" : "speaker");
  $("people-toggle").onclick = () => {
    const panel = $("people");
    panel.hidden = !panel.hidden;
    $("people-toggle").setAttribute("aria-expanded", String(!panel.hidden));
  };
  $("chat-form").onsubmit = (ev) => {
    ev.preventDefault();
    sendChat($("chat-text").value);
    $("chat-text").value = "";
  };
  // closing the tab is leaving: the server need not wait for a `resume`
  window.addEventListener("pagehide", () => {
    if (state.me && !state.left) {
      state.left = true;
      send({ type: "leave" });
    }
  });
  $("camera-select").onchange = $("call-camera").onchange = (ev) => useDevice("video", ev.target.value);
  $("mic-select").onchange = $("call-mic").onchange = (ev) => useDevice("audio", ev.target.value);
  $("no-devices").onchange = (ev) => (ev.target.checked ? stopPreview() : startPreview());
  // /<room>?name=… joins at once; otherwise the pre-join screen
  if (room && params.get("name")) join(room, params.get("name"));
  else startPreview();
}

start();

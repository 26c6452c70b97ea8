// The console's phone: the browser device of the user logged in (an agent, a supervisor or
// an admin), registered over Asterisk's SIP WebSocket while this page is open (SIP.js 0.21.2,
// vendored as its ES modules). Answer, decline, hang up, mute, hold, keypad (RFC 4733 tones,
// as the device's endpoint expects), blind transfer to an extension or a queue number, calls
// out, and the calls of this page. On a supervisor's or an admin's page, a supervision call
// (its caller ID: "listen", "whisper" or "barge", and the agent's extension) is shown as one.
import { Web } from "./vendor/sip.js-0.21.2/index.js";

const root = document.getElementById("phone");
const texts = JSON.parse(root.dataset.texts);
const supervises = root.dataset.supervises === "true";
const statusLine = document.getElementById("phone-status");
const callLine = document.getElementById("phone-call");
const audio = document.getElementById("phone-audio");
const buttons = {
  answer: document.getElementById("phone-answer"),
  decline: document.getElementById("phone-decline"),
  hangup: document.getElementById("phone-hangup"),
  mute: document.getElementById("phone-mute"),
  hold: document.getElementById("phone-hold"),
};
const keypad = document.getElementById("phone-keypad");
const transferForm = document.getElementById("phone-transfer");
const dialForm = document.getElementById("phone-dial");
const logBody = document.querySelector("#phone-log tbody");
const LOG_KEY = "graam-phone-log";
const timeFormat = new Intl.DateTimeFormat(texts.locale, { timeStyle: "medium" });

let manager = null;
let host = "";
let current = null; // { session, direction, who, started, answered, supervision }

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (all, name) => (name in values ? values[name] : all));
}

function setStatus(state, text) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

function who(session) {
  const identity = session.remoteIdentity;
  return identity.displayName || (identity.uri && identity.uri.user) || texts.unknown;
}

// A supervision call placed by the control plane (graam_pbx/supervision): its caller ID's
// name is the mode, its number the agent's extension. Only a supervising viewer's page reads
// it so; to anyone else it is a call like another.
function supervisionOf(session) {
  const identity = session.remoteIdentity;
  const mode = identity.displayName;
  if (!supervises || !Object.hasOwn(texts.supervision, mode)) return null;
  const agent = identity.uri && /^[0-9*#+]{1,32}$/.test(identity.uri.user) ? identity.uri.user : texts.unknown;
  return { mode, agent };
}

function supervisionText(supervision, key) {
  return fill(texts.supervision[supervision.mode][key], { agent: supervision.agent });
}

function show(state) {
  // state: idle, ringing (incoming, not answered), calling (outgoing), talking
  const inCall = state === "talking";
  // A supervision call is only heard, or spoken into: no hold, tones nor transfer, and in
  // listen mode nothing to mute (nobody hears the supervisor).
  const supervision = current && current.supervision;
  buttons.answer.hidden = state !== "ringing";
  buttons.decline.hidden = state !== "ringing";
  buttons.hangup.hidden = !(inCall || state === "calling");
  buttons.mute.hidden = !inCall || Boolean(supervision && supervision.mode === "listen");
  buttons.hold.hidden = !inCall || Boolean(supervision);
  keypad.hidden = !inCall || Boolean(supervision);
  transferForm.hidden = !inCall || Boolean(supervision);
  dialForm.hidden = state !== "idle";
  if (!inCall) {
    buttons.mute.setAttribute("aria-pressed", "false");
    buttons.hold.setAttribute("aria-pressed", "false");
  }
}

function duration(seconds) {
  const whole = Math.max(0, Math.round(seconds));
  return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
}

function drawLog() {
  const entries = JSON.parse(sessionStorage.getItem(LOG_KEY) || "[]");
  logBody.replaceChildren(
    ...entries.map((entry) => {
      const row = document.createElement("tr");
      for (const [text, numeric] of [
        [entry.direction === "in" ? texts.in : texts.out, false],
        [entry.who, false],
        [timeFormat.format(new Date(entry.started)), false],
        [duration(entry.seconds), true],
      ]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (numeric) cell.className = "num";
        row.append(cell);
      }
      return row;
    }),
  );
}

function logCall(call) {
  const entries = JSON.parse(sessionStorage.getItem(LOG_KEY) || "[]");
  const seconds = call.answered ? (Date.now() - call.answered) / 1000 : 0;
  entries.unshift({ direction: call.direction, who: call.who, started: call.started, seconds });
  sessionStorage.setItem(LOG_KEY, JSON.stringify(entries.slice(0, 50)));
  drawLog();
}

const delegate = {
  onServerConnect() {
    manager.register().catch((error) => setStatus("failed", fill(texts.failed, { reason: error.message })));
  },
  onServerDisconnect() {
    setStatus("disconnected", texts.disconnected);
  },
  onRegistered() {
    setStatus("registered", texts.registered);
  },
  onUnregistered() {
    setStatus("unregistered", texts.unregistered);
  },
  onCallReceived(session) {
    if (current) {
      manager.decline(session).catch(() => {});
      return;
    }
    const supervision = supervisionOf(session);
    current = {
      session,
      direction: "in",
      who: supervision ? supervisionText(supervision, "log") : who(session),
      started: Date.now(),
      answered: 0,
      supervision,
    };
    callLine.textContent = supervision
      ? supervisionText(supervision, "incoming")
      : fill(texts.incoming, { caller: current.who });
    show("ringing");
  },
  onCallAnswered(session) {
    if (!current || current.session !== session) return;
    current.answered = Date.now();
    callLine.textContent = current.supervision
      ? supervisionText(current.supervision, "on_call")
      : fill(texts.on_call, { caller: current.who });
    show("talking");
  },
  onCallHold(session, held) {
    if (!current || current.session !== session) return;
    buttons.hold.setAttribute("aria-pressed", String(held));
    if (current.supervision && !held) callLine.textContent = supervisionText(current.supervision, "on_call");
    else callLine.textContent = fill(held ? texts.on_hold : texts.on_call, { caller: current.who });
  },
  onCallHangup(session) {
    if (!current || current.session !== session) return;
    logCall(current);
    current = null;
    callLine.textContent = texts.ended;
    show("idle");
  },
};

function act(promise) {
  promise.catch((error) => setStatus("failed", fill(texts.failed, { reason: error.message })));
}

buttons.answer.addEventListener("click", () => current && act(manager.answer(current.session)));
buttons.decline.addEventListener("click", () => current && act(manager.decline(current.session)));
buttons.hangup.addEventListener("click", () => current && act(manager.hangup(current.session)));
buttons.mute.addEventListener("click", () => {
  if (!current) return;
  const muted = manager.isMuted(current.session);
  if (muted) manager.unmute(current.session);
  else manager.mute(current.session);
  buttons.mute.setAttribute("aria-pressed", String(!muted));
});
buttons.hold.addEventListener("click", () => {
  if (!current) return;
  act(manager.isHeld(current.session) ? manager.unhold(current.session) : manager.hold(current.session));
});
keypad.addEventListener("click", (event) => {
  const tone = event.target.dataset && event.target.dataset.tone;
  if (tone && current) act(manager.sendDTMF(current.session, tone));
});
transferForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const target = transferForm.elements.to.value.trim();
  if (!current || !target) return;
  // A blind transfer: once Asterisk took the REFER, the caller is its to put through, and
  // this leg ends (the caller follows the target's dialplan if nobody answers there).
  const session = current.session;
  act(manager.transfer(session, `sip:${target}@${host}`).then(() => manager.hangup(session)));
});
dialForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const number = dialForm.elements.number.value.trim();
  if (!number || current) return;
  current = { session: null, direction: "out", who: number, started: Date.now(), answered: 0, supervision: null };
  callLine.textContent = fill(texts.calling, { target: number });
  show("calling");
  manager
    .call(`sip:${number}@${host}`)
    .then((session) => {
      if (current) current.session = session;
    })
    .catch((error) => {
      current = null;
      show("idle");
      setStatus("failed", fill(texts.failed, { reason: error.message }));
    });
});

async function start() {
  setStatus("connecting", texts.connecting);
  const response = await fetch(root.dataset.credentials, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(String(response.status));
  const credentials = await response.json();
  host = new URL(credentials.websocket).hostname;
  manager = new Web.SessionManager(credentials.websocket, {
    aor: `sip:${credentials.username}@${host}`,
    delegate,
    media: { constraints: { audio: true, video: false }, remote: { audio } },
    userAgentOptions: {
      authorizationUsername: credentials.username,
      authorizationHa1: credentials.ha1,
      logLevel: "warn",
      // No STUN or TURN server (SIP.js would ask a public one): the phone offers its own
      // addresses, Asterisk its media address; gathering them takes no time to wait on.
      sessionDescriptionHandlerFactoryOptions: {
        peerConnectionConfiguration: { iceServers: [] },
        iceGatheringTimeout: 2000,
      },
    },
    registererOptions: { expires: 300 },
    reconnectionAttempts: 1000000,
    reconnectionDelay: 4,
    registrationRetry: true,
    sendDTMFUsingSessionDescriptionHandler: true,
  });
  // Closing the page unregisters the phone: the agent's session ends with it.
  window.addEventListener("pagehide", () => {
    manager.unregister().catch(() => {});
  });
  await manager.connect();
  stillSignedIn();
}

// The phone lives only while its console session does: checked every few seconds, and
// when the session has ended, the phone unregisters (the agent's queue session ends with
// it) and disconnects for good.
function stillSignedIn() {
  const every = Number(root.dataset.sessionCheck) * 1000;
  const timer = setInterval(async () => {
    let response;
    try {
      response = await fetch(root.dataset.credentials, { cache: "no-store", credentials: "same-origin", redirect: "manual" });
    } catch (error) {
      return; // the console unreachable for a moment is no logout
    }
    // A server error is the console restarting, not a logout: the next check decides.
    if (response.ok || response.status >= 500) return;
    clearInterval(timer);
    if (current) await manager.hangup(current.session).catch(() => {});
    await manager.unregister().catch(() => {});
    await manager.disconnect().catch(() => {});
    show("idle");
    dialForm.hidden = true;
    setStatus("signed-out", texts.signed_out);
  }, every);
}

drawLog();
show("idle");
start().catch((error) => setStatus("failed", fill(texts.failed, { reason: error.message })));

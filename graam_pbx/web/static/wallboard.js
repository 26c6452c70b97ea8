// The wallboard, live: the board arrives whole from the control plane's stream
// (/live/wallboard, Server-Sent Events) at each change and is drawn again; times in state
// and waits count up here between changes; an agent on a call gets the supervision buttons.
// The browser reconnects by itself; after a failure it cannot retry (the control plane
// answering an error while it starts), this script does.
"use strict";
(function () {
  const root = document.getElementById("wallboard");
  if (!root || !window.EventSource) return;
  const texts = JSON.parse(root.dataset.texts);
  const statusLine = document.getElementById("wallboard-status");
  const queuesTable = document.getElementById("wallboard-queues");
  const agentsTable = document.getElementById("wallboard-agents");
  const alertsList = document.getElementById("wallboard-alerts");
  const campaignsTable = document.getElementById("wallboard-campaigns");
  const superviseForm = document.getElementById("wallboard-supervise");
  let skew = 0; // the browser's clock minus the control plane's
  let source = null;
  let retryTimer = null;

  const number = new Intl.NumberFormat(texts.locale);
  const percent = new Intl.NumberFormat(texts.locale, {
    style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1,
  });

  function duration(seconds) {
    const whole = Math.max(0, Math.round(seconds));
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const secs = String(whole % 60).padStart(2, "0");
    return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + secs : minutes + ":" + secs;
  }
  function since(iso) {
    return (Date.now() - skew - Date.parse(iso)) / 1000;
  }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (all, name) => (name in values ? values[name] : all));
  }
  function cell(tag, text, field, numeric) {
    const element = document.createElement(tag);
    element.textContent = text;
    if (field) element.dataset.field = field;
    if (numeric) element.className = "num";
    return element;
  }
  function badge(text, className) {
    const span = document.createElement("span");
    span.className = "badge " + className;
    span.textContent = text;
    return span;
  }
  function ratio(value) {
    return value === null || value === undefined ? "—" : percent.format(Number(value));
  }

  function setStatus(state) {
    statusLine.dataset.state = state;
    statusLine.textContent = texts.status[state];
  }

  function renderQueues(board) {
    const body = queuesTable.tBodies[0];
    body.replaceChildren();
    for (const queue of board.queues) {
      const row = document.createElement("tr");
      row.dataset.queue = queue.id;
      row.className = "row-" + queue.level;
      const name = cell("th", queue.name);
      name.scope = "row";
      row.append(name);
      const waiting = cell("td", number.format(queue.waiting), "waiting", true);
      waiting.classList.add("big");
      row.append(waiting);
      const wait = cell("td", queue.waiting ? duration(since(queue.oldest_entered_at)) : "—", "longest-wait", true);
      wait.dataset.oldest = queue.oldest_entered_at || "";
      row.append(wait);
      const level = cell("td", "", "level");
      level.append(badge(texts.levels[queue.level], "level-" + queue.level));
      row.append(level);
      const today = queue.today;
      row.append(
        cell("td", number.format(today.offered), "offered", true),
        cell("td", number.format(today.answered), "answered", true),
        cell("td", number.format(today.abandoned), "abandoned", true),
        cell("td", ratio(today.service_level), "service-level", true),
        cell("td", ratio(today.abandon_rate), "abandon-rate", true),
        cell("td", today.asa_s === null ? "—" : duration(Number(today.asa_s)), "asa", true),
        cell("td", queue.agents_needed === null ? "—" : number.format(queue.agents_needed), "agents-needed", true),
      );
      body.append(row);
    }
    queuesTable.hidden = board.queues.length === 0;
    document.getElementById("wallboard-no-queues").hidden = board.queues.length > 0;
  }

  // An agent on a call: the buttons that call the viewer's phone to listen, whisper or barge
  // (the page's form, for this agent).
  function supervise(agent) {
    const element = cell("td", "", "supervise");
    if (agent.state !== "on-call" || !superviseForm) return element;
    const form = superviseForm.content.firstElementChild.cloneNode(true);
    form.action = form.getAttribute("action").replace("/agents/0/", "/agents/" + agent.user_id + "/");
    for (const name of form.querySelectorAll(".agent-name")) name.textContent = " (" + agent.name + ")";
    element.append(form);
    return element;
  }

  function renderAgents(board) {
    const body = agentsTable.tBodies[0];
    body.replaceChildren();
    for (const agent of board.agents) {
      const row = document.createElement("tr");
      row.dataset.agent = agent.user_id;
      const name = cell("th", agent.name);
      name.scope = "row";
      row.append(name);
      const state = cell("td", "", "state");
      state.append(badge(texts.states[agent.state] || agent.state, "state-" + agent.state));
      row.append(state);
      const inState = cell("td", duration(since(agent.since)), "in-state", true);
      inState.dataset.since = agent.since;
      row.append(inState);
      let reason = "";
      if (agent.state === "paused") {
        if (!agent.pause_reason) reason = texts.no_reason;
        else reason = agent.pause_label ? agent.pause_reason + " · " + agent.pause_label : agent.pause_reason;
      }
      row.append(cell("td", reason, "reason"));
      row.append(supervise(agent));
      body.append(row);
    }
    agentsTable.hidden = board.agents.length === 0;
    document.getElementById("wallboard-no-agents").hidden = board.agents.length > 0;
  }

  function renderAlerts(board) {
    const queues = new Map(board.queues.map((queue) => [queue.id, queue]));
    alertsList.replaceChildren();
    for (const alert of board.alerts) {
      const queue = queues.get(alert.queue_id);
      if (!queue) continue;
      const item = document.createElement("li");
      item.className = "level-" + alert.level;
      item.textContent = fill(texts.alerts[alert.kind], {
        queue: queue.name,
        count: number.format(queue.waiting),
        wait: duration(since(queue.oldest_entered_at)),
        level: texts.levels[alert.level],
      });
      alertsList.append(item);
    }
    alertsList.hidden = board.alerts.length === 0;
    document.getElementById("wallboard-no-alerts").hidden = board.alerts.length > 0;
  }

  function renderCampaigns(board) {
    const campaigns = board.campaigns || [];
    const body = campaignsTable.tBodies[0];
    body.replaceChildren();
    for (const campaign of campaigns) {
      const row = document.createElement("tr");
      row.dataset.campaign = campaign.id;
      const name = cell("th", campaign.name);
      name.scope = "row";
      const inProgress = cell("td", number.format(campaign.in_progress), "in-progress", true);
      inProgress.classList.add("big");
      row.append(
        name,
        cell("td", texts.modes[campaign.mode] || campaign.mode, "mode"),
        inProgress,
        cell("td", number.format(campaign.attempts), "attempts", true),
        cell("td", number.format(campaign.answered), "answered", true),
        cell("td", ratio(campaign.abandon_rate_24h), "abandon-rate-24h", true),
      );
      body.append(row);
    }
    campaignsTable.hidden = campaigns.length === 0;
    document.getElementById("wallboard-no-campaigns").hidden = campaigns.length > 0;
  }

  function render(board) {
    skew = Date.now() - Date.parse(board.generated_at);
    renderQueues(board);
    renderAgents(board);
    renderAlerts(board);
    renderCampaigns(board);
    root.dataset.seq = board.seq;
  }

  // Between boards, the clocks move on.
  function tick() {
    for (const element of root.querySelectorAll("[data-since]")) {
      element.textContent = duration(since(element.dataset.since));
    }
    for (const element of root.querySelectorAll("[data-oldest]")) {
      element.textContent = element.dataset.oldest ? duration(since(element.dataset.oldest)) : "—";
    }
  }

  function connect() {
    retryTimer = null;
    setStatus(source ? "reconnecting" : "connecting");
    source = new EventSource(root.dataset.stream, { withCredentials: true });
    source.addEventListener("open", () => setStatus("live"));
    source.addEventListener("board", (event) => {
      render(JSON.parse(event.data));
      setStatus("live");
    });
    source.addEventListener("error", () => {
      setStatus("reconnecting");
      if (source.readyState === EventSource.CLOSED && retryTimer === null) {
        retryTimer = window.setTimeout(connect, 2000);
      }
    });
  }

  render(JSON.parse(root.dataset.board));
  window.setInterval(tick, 1000);
  connect();
})();

// The agent's campaign call screen, kept current: every few seconds it asks what the screen
// should show (/campaign-call/state, a short key) and reloads the page when that changed:
// a call reached the agent, ended, or a preview contact was reserved. Without script the
// page is the same, reloaded by hand.
"use strict";
(function () {
  const root = document.getElementById("campaign-call");
  if (!root || !window.fetch) return;
  const every = 2000;
  let busy = false;

  function typing() {
    const active = document.activeElement;
    return active && (active.tagName === "TEXTAREA" || active.tagName === "INPUT");
  }

  async function check() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const answer = await fetch(root.dataset.stateUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (answer.ok) {
        const state = await answer.json();
        if (state.key !== root.dataset.key && !typing()) {
          window.location.replace(window.location.pathname + window.location.search.replace(/([?&])done=[^&]*&?/, "$1"));
          return;
        }
      }
    } catch (error) {
      // The control plane is restarting: the next tick asks again.
    } finally {
      busy = false;
    }
  }

  window.setInterval(check, every);
})();

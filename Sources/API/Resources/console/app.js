// The console's entry point: loads config.json, restores or asks for a sign-in, and switches the page
// between the signed-out view and the signed-in one (sessions, conversation, and for supervisors and
// admins the live view).

import { ApiError } from "./api.js";
import { currentUser, initAuth, restoreSession, signIn, signInWithToken, signOut } from "./auth.js";
import { clearBalance, refreshBalance } from "./balance.js";
import { loadConfig } from "./config.js";
import { initConversation, openSession, rememberedSession, resetConversation, sessionDeleted } from "./conversation.js";
import { clearError, initErrors, showError, showNotice } from "./errors.js";
import { clearModels, initModels, loadModels } from "./models.js";
import { clearSessions, initSessions, loadSessions } from "./sessions.js";
import { initSupervisor, startSupervisor, stopSupervisor } from "./supervisor.js";

let shownUserId = null;

async function start() {
  initErrors();
  try {
    await loadConfig();
  } catch (error) {
    showError(error);
    return;
  }
  initAuth({ onChange: userChanged });
  initModels();
  initSessions({ onOpen: (id) => openSession(id, { focus: true }), onDeleted: sessionDeleted });
  initConversation();
  initSupervisor();
  bindSignIn();
  document.getElementById("sign-out-button").addEventListener("click", () => {
    signOut("");
    showNotice("Signed out.");
  });
  document.getElementById("balance-refresh").addEventListener("click", () => refreshBalance());
  const user = await restoreSession();
  if (!user) showSignedOut("", { focus: false });
}

function bindSignIn() {
  document.getElementById("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = document.getElementById("signin-username");
    const password = document.getElementById("signin-password");
    const button = document.getElementById("signin-button");
    if (!username.value.trim() || !password.value) {
      showError({ message: "Enter a username (or email) and a password." });
      (username.value.trim() ? password : username).focus();
      return;
    }
    button.disabled = true;
    try {
      await signIn(username.value.trim(), password.value);
      password.value = "";
    } catch (error) {
      showError(error, "Signing in");
      password.focus();
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token-input");
    try {
      signInWithToken(input.value);
      input.value = "";
    } catch (error) {
      showError({ message: error.message });
      input.focus();
    }
  });
}

// Called by auth.js whenever who is signed in changes.
function userChanged(user, reason) {
  if (user) showSignedIn(user);
  else showSignedOut(reason);
}

async function showSignedIn(user) {
  const sameUser = shownUserId === user.id;
  shownUserId = user.id;
  document.getElementById("signed-in-user").textContent = user.name || user.id;
  document.getElementById("signed-in-role").textContent = user.role;
  document.getElementById("account").hidden = false;
  document.getElementById("skip-link").href = "#main";
  document.getElementById("signin-view").hidden = true;
  document.getElementById("app-view").hidden = false;
  if (sameUser) return;
  clearError();
  showNotice(`Signed in as ${user.name || user.id} (${user.role}).`);
  const supervises = user.role === "supervisor" || user.role === "admin";
  document.getElementById("app-view").classList.toggle("no-supervisor", !supervises);
  document.getElementById("new-session-title").focus();
  refreshBalance();
  await loadModels(); // first: the lists show model names
  if (currentUser()?.id !== user.id) return;
  await loadSessions();
  if (supervises) startSupervisor();
  else stopSupervisor();
  const remembered = rememberedSession();
  if (remembered) openSession(remembered);
}

function showSignedOut(reason, { focus = true } = {}) {
  shownUserId = null;
  resetConversation();
  clearSessions();
  clearModels();
  stopSupervisor();
  clearBalance();
  document.getElementById("account").hidden = true;
  document.getElementById("skip-link").href = "#signin-view";
  showNotice("");
  document.getElementById("app-view").hidden = true;
  document.getElementById("signin-view").hidden = false;
  if (reason) showError(new ApiError({ status: 401, message: reason }));
  if (focus) document.getElementById("signin-username").focus();
}

start();

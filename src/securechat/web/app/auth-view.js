/**
 * The sign-in screen: log in, create an account, unlock after a reload.
 *
 * @module
 */

import { byId, explain, setMessage, show } from "./dom.js";
import { PASSWORD_RULES, passwordProblem, strength } from "./password-policy.js";

/**
 * @typedef {object} AuthActions
 * @property {(username: string, password: string, remember: boolean, progress: (s: string) => void) => Promise<void>} login
 * @property {(username: string, password: string, remember: boolean, progress: (s: string) => void) => Promise<void>} register
 * @property {(password: string, remember: boolean, progress: (s: string) => void) => Promise<void>} unlock
 * @property {() => Promise<void>} switchAccount
 */

export class AuthView {
  /** @param {AuthActions} actions */
  constructor(actions) {
    this.actions = actions;
    this.screen = byId("auth-screen");
    this.loginForm = byId("login-form");
    this.registerForm = byId("register-form");
    this.unlockForm = byId("unlock-form");
    this.tabs = { login: byId("tab-login"), register: byId("tab-register") };
    this.progress = byId("auth-progress");
    this.progressText = byId("auth-progress-text");
    this.error = byId("auth-error");
    this.busy = false;

    this.tabs.login.addEventListener("click", () => this.selectTab("login"));
    this.tabs.register.addEventListener("click", () => this.selectTab("register"));
    for (const tab of Object.values(this.tabs)) {
      tab.addEventListener("keydown", (/** @type {KeyboardEvent} */ event) => {
        if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
          const next = tab === this.tabs.login ? "register" : "login";
          this.selectTab(next);
          this.tabs[next].focus();
        }
      });
    }
    byId("register-password").addEventListener("input", () => this.updateStrength());
    this.loginForm.addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      void this.submitLogin();
    });
    this.registerForm.addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      void this.submitRegister();
    });
    this.unlockForm.addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      void this.submitUnlock();
    });
    byId("unlock-switch").addEventListener("click", () => void this.actions.switchAccount());
  }

  /** @param {"login" | "register"} which */
  selectTab(which) {
    for (const [name, tab] of Object.entries(this.tabs)) {
      tab.setAttribute("aria-selected", String(name === which));
      tab.tabIndex = name === which ? 0 : -1;
    }
    show(this.loginForm, which === "login");
    show(this.registerForm, which === "register");
    setMessage(this.error, null);
  }

  /** @param {{error?: string, username?: string}} [options] */
  showLogin({ error, username } = {}) {
    show(this.screen);
    show(this.unlockForm, false);
    show(byId("auth-title").nextElementSibling);
    show(this.tabs.login.parentElement);
    this.selectTab("login");
    if (username) byId("login-username").value = username;
    setMessage(this.error, error ?? null);
    (username ? byId("login-password") : byId("login-username")).focus();
  }

  /** @param {string} username */
  showUnlock(username) {
    show(this.screen);
    show(this.tabs.login.parentElement, false);
    show(this.loginForm, false);
    show(this.registerForm, false);
    show(this.unlockForm);
    byId("unlock-username").textContent = username;
    byId("unlock-account").value = username;
    setMessage(this.error, null);
    byId("unlock-password").focus();
  }

  hide() {
    show(this.screen, false);
    for (const id of ["login-password", "register-password", "register-confirm", "unlock-password"]) byId(id).value = "";
  }

  updateStrength() {
    const password = byId("register-password").value;
    const { score, label } = strength(password);
    const meter = byId("password-meter");
    meter.dataset.score = String(score);
    meter.style.width = password ? `${25 * (score + 1)}%` : "0";
    byId("password-strength").textContent = password ? `Strength: ${label}` : PASSWORD_RULES;
  }

  /**
   * Run an action with the form disabled and a visible progress state.
   *
   * @param {HTMLFormElement} form
   * @param {(progress: (s: string) => void) => Promise<void>} action
   */
  async run(form, action) {
    if (this.busy) return;
    this.busy = true;
    setMessage(this.error, null);
    // These forms hold only inputs and buttons (index.html).
    const controls = /** @type {(HTMLInputElement | HTMLButtonElement)[]} */ ([...form.elements]);
    for (const control of controls) control.disabled = true;
    show(this.progress);
    try {
      await action((step) => {
        this.progressText.textContent = step;
      });
    } catch (error) {
      setMessage(this.error, explain(error));
    } finally {
      this.busy = false;
      show(this.progress, false);
      for (const control of controls) control.disabled = false;
    }
  }

  async submitLogin() {
    const username = byId("login-username").value.trim();
    const password = byId("login-password").value;
    if (!username || !password) {
      setMessage(this.error, "Enter your username and password.");
      return;
    }
    await this.run(this.loginForm, (progress) =>
      this.actions.login(username, password, byId("login-remember").checked, progress),
    );
  }

  async submitRegister() {
    const username = byId("register-username").value.trim();
    const password = byId("register-password").value;
    if (!username) {
      setMessage(this.error, "Choose a username.");
      return;
    }
    const problem = await passwordProblem(password, username);
    if (problem) {
      setMessage(this.error, problem);
      byId("register-password").focus();
      return;
    }
    if (password !== byId("register-confirm").value) {
      setMessage(this.error, "The two passwords are not the same.");
      byId("register-confirm").focus();
      return;
    }
    await this.run(this.registerForm, (progress) =>
      this.actions.register(username, password, byId("register-remember").checked, progress),
    );
  }

  async submitUnlock() {
    const password = byId("unlock-password").value;
    if (!password) {
      setMessage(this.error, "Enter your password.");
      return;
    }
    await this.run(this.unlockForm, (progress) =>
      this.actions.unlock(password, byId("unlock-remember").checked, progress),
    );
  }
}

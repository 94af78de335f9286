// app.js: the server-side flow page ("/").
//
// Signed out: the GIS "Sign in with Google" button (ID token, posted to
// /tokensignin; or, with ?ux=redirect, GIS redirect mode posting to it
// directly) and "Sign in with offline access" (GIS code client, the code
// posted to /connect). Signed in: sign out, disconnect, and the code client
// again to enable or reconnect offline access.
'use strict';

(() => {
  const page = window.SigninPage;
  const cfg = page.config();
  const $ = (id) => document.getElementById(id);

  // A note for the next page load, kept in sessionStorage across the reload,
  // so that the page says what just happened.
  const NOTICE_KEY = 'signin.notice';
  const NOTICE_NO_REFRESH = 'no-refresh-token';
  const NOTICES = {
    'signed-out': 'You are signed out. If you enabled offline access, the server still holds it: ' +
      'Disconnect (once signed in) removes it.',
    'signed-out-everywhere': 'You are signed out everywhere: every session of yours on this server, ' +
      'on every device, has ended.',
    'disconnected': 'Disconnected: this app\'s access was revoked at Google, the server deleted what it ' +
      'stored for you, and you are signed out everywhere.',
    'disconnected-nothing-stored': 'Disconnected: the server held no offline access for you, so there was ' +
      'nothing to revoke or delete; you are signed out everywhere.',
    'already-signed-out': 'Your session had already ended: you are signed out.',
  };

  function setNotice(note) {
    try {
      window.sessionStorage.setItem(NOTICE_KEY, note);
    } catch (e) {
      // Storage unavailable: the page still shows the new state.
    }
  }

  // takeNotice returns the note left by the previous page, once.
  function takeNotice() {
    try {
      const note = window.sessionStorage.getItem(NOTICE_KEY);
      window.sessionStorage.removeItem(NOTICE_KEY);
      return note;
    } catch (e) {
      return null;
    }
  }

  // consentNext makes the next code request ask with prompt=consent (see
  // requestCode).
  let consentNext = false;

  function busy(on) {
    for (const id of ['signin-offline', 'enable-offline', 'reconnect', 'grant-missing', 'signout', 'signout-everywhere', 'disconnect']) {
      const el = $(id);
      if (el && el.dataset.ready === '1') el.disabled = on;
    }
    if (on) page.setState('working');
  }

  function ready(el, onClick) {
    if (!el) return;
    el.dataset.ready = '1';
    el.disabled = false;
    el.addEventListener('click', onClick);
  }

  // Back to the page's own state after a flow the user abandoned.
  function idle() {
    busy(false);
    page.setState(cfg.view);
  }

  // Everything ends on "/": a constant target, never one from the URL.
  function home() {
    window.location.assign('/');
  }

  // send posts form to path and returns the answer; on failure it shows
  // why, ends the busy state and returns null. okStatus, if given, is one
  // more status that counts as success.
  async function send(path, form, failText, okStatus) {
    let res;
    try {
      res = await page.post(path, form);
    } catch (e) {
      busy(false);
      page.showError('The server could not be reached. Please try again.');
      return null;
    }
    if (!res.ok && res.status !== okStatus) {
      busy(false);
      page.showError(page.errorText(res, failText));
      return null;
    }
    return res;
  }

  // onCredential receives the GIS button's ID token (popup mode).
  async function onCredential(resp) {
    if (!resp || !resp.credential) {
      page.showError('Google did not return a sign-in credential.');
      return;
    }
    page.clearError();
    busy(true);
    if (await send('/tokensignin', {credential: resp.credential}, 'Sign-in failed.')) {
      home();
    }
  }

  // requestCode asks Google, in a popup, for a one-time code that the server
  // exchanges for tokens. It must run inside the click handler, or the
  // browser blocks the popup. include_granted_scopes: the grant Google
  // gives holds every scope granted so far (incremental authorization).
  function requestCode(accounts, extra) {
    page.clearError();
    if (consentNext) {
      // A /connect failed after Google redeemed its code: Google may have
      // given its one refresh token to a server that could not keep it.
      // Only a consent makes it send one again.
      extra = Object.assign({}, extra, {prompt: 'consent'});
    }
    const client = accounts.oauth2.initCodeClient(Object.assign({
      client_id: cfg.client_id,
      scope: cfg.scope,
      include_granted_scopes: true,
      ux_mode: 'popup',
      callback: onCode,
      error_callback: onCodeError,
    }, extra));
    busy(true);
    client.requestCode();
  }

  async function onCode(resp) {
    if (!resp || resp.error || !resp.code) {
      busy(false);
      const why = resp && resp.error === 'access_denied' ?
        'You did not grant access.' : 'Google did not return an authorization code.';
      page.showError(why);
      return;
    }
    // Whatever went wrong on the server, the code is spent: the next try
    // asks with consent (see requestCode), never ending without a way to
    // get a refresh token.
    consentNext = true;
    const res = await send('/connect', {code: resp.code}, 'Connecting failed.');
    if (!res) {
      return;
    }
    consentNext = false;
    if (res.body && res.body.offline === false) {
      // Signed in, but Google sent no refresh token (it sends one only on
      // the first consent). The next page offers "Enable offline access",
      // which asks again with prompt=consent; say why.
      setNotice(NOTICE_NO_REFRESH);
    }
    home();
  }

  function onCodeError(err) {
    const type = err && err.type;
    idle();
    if (type === 'popup_closed') {
      page.showNotice('The Google window was closed before you finished.');
    } else if (type === 'popup_failed_to_open') {
      page.showError('The Google window could not open. Allow popups for this site and try again.');
    } else {
      page.showError('Google could not complete the request. Please try again.');
    }
  }

  // signOut posts to /signout or /disconnect and leaves a note (see
  // NOTICES) saying what happened for the signed-out page; note may look
  // at the answer's body.
  async function signOut(path, form, note) {
    page.clearError();
    busy(true);
    // 401: the session had already ended; the user is signed out either way.
    const res = await send(path, form, 'That did not work.', 401);
    if (!res) {
      return;
    }
    setNotice(res.status === 401 ? 'already-signed-out' : note(res.body || {}));
    // Stop GIS from signing the user straight back in.
    if (window.google && window.google.accounts && window.google.accounts.id) {
      window.google.accounts.id.disableAutoSelect();
    }
    home();
  }

  function gisFailed(e) {
    page.showError((e && e.message) || 'Google Identity Services could not be loaded.');
  }

  function signedOut() {
    page.whenGIS().then((accounts) => {
      if (cfg.ux_mode === 'redirect') {
        // Google posts the ID token (and g_csrf_token) to /tokensignin
        // itself, which answers with a redirect to "/".
        accounts.id.initialize({
          client_id: cfg.client_id,
          ux_mode: 'redirect',
          login_uri: window.location.origin + '/tokensignin',
        });
      } else {
        accounts.id.initialize({client_id: cfg.client_id, callback: onCredential});
      }
      accounts.id.renderButton($('gsi-button'), {
        type: 'standard', theme: 'outline', size: 'large',
        text: 'signin_with', shape: 'rectangular', logo_alignment: 'left',
      });
      ready($('signin-offline'), () => requestCode(accounts, {select_account: true}));
      page.setState('signed-out');
    }).catch(gisFailed);
  }

  function signedIn() {
    ready($('signout'), () => signOut('/signout', null, () => 'signed-out'));
    ready($('signout-everywhere'), () => signOut('/signout', {everywhere: '1'}, () => 'signed-out-everywhere'));
    ready($('disconnect'), () => signOut('/disconnect', null,
        (body) => body.revoked === false ? 'disconnected-nothing-stored' : 'disconnected'));

    const note = takeNotice();
    if (note === NOTICE_NO_REFRESH && cfg.offline !== 'active') {
      page.showNotice('You are signed in, but Google did not give the server offline access this time: ' +
        'it does so only when you consent. One more Google window, asking for your consent, grants it: ' +
        'use "' + ($('reconnect') ? 'Reconnect' : 'Enable offline access') + '" below.');
    }

    const grant = $('enable-offline') || $('reconnect');
    const rest = $('grant-missing');
    if (!grant && !rest) {
      // Offline access is on, every scope granted: nothing here needs GIS.
      page.setState('signed-in');
      return;
    }
    page.whenGIS().then((accounts) => {
      // prompt=consent: the only way to be sure Google sends a refresh
      // token again to a user who consented before.
      ready(grant, () => requestCode(accounts, {login_hint: cfg.login_hint, prompt: 'consent'}));
      // Just the scopes the grant lacks: Google's answer, and the refresh
      // token that comes with it, hold them and every scope granted before.
      ready(rest, () => requestCode(accounts, {scope: cfg.missing_scope, login_hint: cfg.login_hint, prompt: 'consent'}));
      page.setState('signed-in');
    }).catch(gisFailed);
  }

  if (cfg.view === 'signed-in') {
    signedIn();
  } else {
    const note = takeNotice();
    if (NOTICES[note]) page.showNotice(NOTICES[note]);
    signedOut();
  }
})();

// staticjs.js: the client-side flow page ("/staticjs").
//
// The GIS token client gives this page an access token (never a refresh
// token); the page calls the People API itself and draws the profile with
// textContent (no user data ever goes through innerHTML). The token lives
// in this closure only: the server never sees it, and a reload forgets it.
// Sign-out forgets it in the page. Revoking at Google is a separate action:
// Google revokes the app's whole grant for the user, which also ends the
// offline access the server may hold for them (the home page's flow).
'use strict';

(() => {
  const page = window.SigninPage;
  const cfg = page.config();
  const $ = (id) => document.getElementById(id);

  let accessToken = null;
  let expiresAt = 0;

  function primary(list) {
    if (!Array.isArray(list) || list.length === 0) return null;
    return list.find((x) => x && x.metadata && x.metadata.primary) || list[0];
  }

  function drawProfile(person) {
    const name = primary(person.names);
    const email = primary(person.emailAddresses);
    const photo = primary(person.photos);
    $('profile-name').textContent = (name && name.displayName) || '';
    $('profile-email').textContent = (email && email.value) || '';
    const img = $('profile-photo');
    if (photo && photo.url) {
      img.src = photo.url;
      img.hidden = false;
    } else {
      img.removeAttribute('src');
      img.hidden = true;
    }
  }

  // scopeName is a scope as the pages name it: email, profile, openid,
  // contacts.readonly (Google's answer lists short and long forms).
  function scopeName(s) {
    const short = s.replace(/^https:\/\/www\.googleapis\.com\/auth\//, '');
    return short === 'userinfo.email' ? 'email' : short === 'userinfo.profile' ? 'profile' : short;
  }

  // drawScopes shows what the token client's answer granted and which of
  // the server's offline scopes it did not: the same lists as the
  // server-side page, read from Google's answer as GIS reads it.
  function drawScopes(resp) {
    const granted = [];
    for (const s of String((resp && resp.scope) || '').split(' ')) {
      const name = scopeName(s);
      if (name && !granted.includes(name)) granted.push(name);
    }
    const oauth2 = window.google.accounts.oauth2;
    const missing = String(cfg.offline_scopes || '').split(' ').filter((s) => s && !oauth2.hasGrantedAllScopes(resp, s));
    $('token-granted-scopes').textContent = granted.length ? granted.join(', ') : 'none listed';
    $('token-missing-scopes').textContent = missing.map(scopeName).join(', ');
    page.show($('token-missing-note'), missing.length > 0);
  }

  function drawSignedIn(signedIn) {
    page.show($('signed-out-view'), !signedIn);
    page.show($('signed-in-view'), signedIn);
    const cell = $('flow-access-token');
    // Once the flow has done something, the panel says what.
    if (signedIn) page.show($('flow-panel'), true);
    if (signedIn) {
      const minutes = Math.max(0, Math.round((expiresAt - Date.now()) / 60000));
      cell.textContent = 'in this page\'s memory, for about ' + minutes + ' more minutes';
    } else {
      cell.textContent = 'none';
    }
  }

  async function onToken(resp) {
    if (!resp || resp.error || !resp.access_token) {
      busy(false);
      page.showError(resp && resp.error === 'access_denied' ?
        'You did not grant access.' : 'Google did not return an access token.');
      return;
    }
    accessToken = resp.access_token;
    expiresAt = Date.now() + (Number(resp.expires_in) || 3600) * 1000;
    let res;
    try {
      res = await fetch(cfg.people_api_base + 'v1/people/me?personFields=names,emailAddresses,photos', {
        headers: {Authorization: 'Bearer ' + accessToken},
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      busy(false);
      page.showError('The People API could not be reached. Please try again.');
      return;
    }
    if (!res.ok) {
      busy(false);
      page.showError('The People API refused the request (HTTP ' + res.status + ').');
      return;
    }
    let person;
    try {
      person = await res.json();
    } catch (e) {
      busy(false);
      page.showError('The People API sent an answer this page cannot read.');
      return;
    }
    page.clearError();
    drawProfile(person || {});
    drawScopes(resp);
    drawSignedIn(true);
    busy(false);
    $('token-signout').focus();
    page.setState('signed-in');
  }

  function onTokenError(err) {
    busy(false);
    page.setState('signed-out');
    if (err && err.type === 'popup_closed') return;
    page.showError(err && err.type === 'popup_failed_to_open' ?
      'The Google window could not open. Allow popups for this site and try again.' :
      'Google could not complete the sign-in. Please try again.');
  }

  const NOTICE_SIGNED_OUT = 'You are signed out: this page forgot its access token. ' +
    'Google still holds this app\'s access to your account (and the server its offline access, ' +
    'if you enabled it on the home page); "Revoke access at Google" ends it.';
  const NOTICE_REVOKED = 'Revoked at Google: this app\'s access to your account has ended, ' +
    'including the server\'s offline access if you had enabled it (the home page offers Reconnect). ' +
    'You are signed out.';

  // busy disables the page's buttons while a request is under way.
  function busy(on) {
    for (const id of ['token-signin', 'token-signout', 'token-revoke']) {
      const el = $(id);
      if (el) el.disabled = on;
    }
    if (on) page.setState('working');
  }

  // signOut forgets the token in the page; with revoke it first revokes it
  // at Google, which ends the app's whole grant for the user.
  function signOut(accounts, revoke) {
    const token = accessToken;
    accessToken = null;
    expiresAt = 0;
    page.clearError();
    const done = (notice) => {
      drawProfile({});
      drawSignedIn(false);
      busy(false);
      page.showNotice(notice);
      $('token-signin').focus();
      page.setState('signed-out');
    };
    if (!revoke || !token) {
      done(NOTICE_SIGNED_OUT);
      return;
    }
    busy(true);
    accounts.oauth2.revoke(token, (resp) => {
      if (resp && resp.successful === false) {
        // Google did not revoke: keep the token, so the user can retry.
        accessToken = token;
        busy(false);
        page.setState('signed-in');
        page.showError('Google did not revoke the access' + (resp.error ? ' (' + resp.error + ')' : '') +
          '. Please try again.');
        return;
      }
      done(NOTICE_REVOKED);
    });
  }

  page.whenGIS().then((accounts) => {
    const client = accounts.oauth2.initTokenClient({
      client_id: cfg.client_id,
      scope: cfg.scope,
      callback: onToken,
      error_callback: onTokenError,
    });
    const signin = $('token-signin');
    signin.disabled = false;
    signin.addEventListener('click', () => {
      page.clearError();
      busy(true);
      client.requestAccessToken();
    });
    $('token-signout').addEventListener('click', () => signOut(accounts, false));
    $('token-revoke').addEventListener('click', () => signOut(accounts, true));
    page.setState('signed-out');
  }).catch((e) => {
    page.showError((e && e.message) || 'Google Identity Services could not be loaded.');
  });
})();

// common.js: helpers shared by the pages. Loaded before app.js and
// staticjs.js (all deferred, so they run in document order).
//
// The pages' final state is written to document.body.dataset.state
// ("signed-out", "signed-in", "error") once the page is usable, so tests and
// scripts can wait for it.
'use strict';

window.SigninPage = (() => {
  // config returns the settings the server put in #config.
  function config() {
    const el = document.getElementById('config');
    try {
      return JSON.parse(el ? el.textContent : '{}') || {};
    } catch (e) {
      return {};
    }
  }

  function setState(state) {
    document.body.dataset.state = state;
  }

  function show(el, on) {
    if (el) el.hidden = !on;
  }

  // showError shows message in #error and puts the page in the error state.
  function showError(message) {
    const el = document.getElementById('error');
    if (el) {
      el.textContent = message;
      el.hidden = false;
      el.scrollIntoView && el.scrollIntoView({block: 'nearest'});
    }
    setState('error');
  }

  function clearError() {
    const el = document.getElementById('error');
    if (el) {
      el.textContent = '';
      el.hidden = true;
    }
  }

  function showNotice(message) {
    const el = document.getElementById('notice');
    if (el) {
      el.textContent = message;
      el.hidden = false;
    }
  }

  // post sends a form-encoded POST to our server the way every state change
  // is sent: same origin, with X-Requested-With (the server's CSRF check).
  // It resolves to {ok, status, body} with body parsed from JSON when it is.
  async function post(path, fields) {
    const res = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        'X-Requested-With': 'XmlHttpRequest',
      },
      body: new URLSearchParams(fields || {}).toString(),
    });
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    return {ok: res.ok, status: res.status, body};
  }

  // errorText turns an API error answer into a sentence for the user.
  function errorText(res, fallback) {
    const code = res && res.body && res.body.error;
    switch (code) {
      case 'account_mismatch':
        return 'You chose a different Google account from the one you are signed in with. Sign out first to switch accounts.';
      case 'invalid_grant':
        return 'Google says that sign-in code was already used or has expired. Please try again.';
      case 'invalid_token':
        return 'Google\'s sign-in could not be verified. Please try again.';
      case 'csrf':
        return 'The request was refused as cross-site. Reload the page and try again.';
    }
    if (res && res.status === 502) {
      return 'Google could not be reached. Nothing was changed; please try again.';
    }
    if (res && res.body && res.body.message) return res.body.message;
    return fallback || 'Something went wrong. Please try again.';
  }

  // whenGIS resolves to google.accounts once the GIS script has loaded
  // (it is async, so it may come before or after this script runs).
  function whenGIS(timeoutMs) {
    return new Promise((resolve, reject) => {
      const ready = () => window.google && window.google.accounts;
      if (ready()) {
        resolve(window.google.accounts);
        return;
      }
      const script = document.getElementById('gis-script');
      if (!script) {
        reject(new Error('This page has no Google Identity Services script.'));
        return;
      }
      const timer = setTimeout(() => {
        reject(new Error('Google Identity Services did not load.'));
      }, timeoutMs || 15000);
      script.addEventListener('load', () => {
        clearTimeout(timer);
        if (ready()) {
          resolve(window.google.accounts);
        } else {
          reject(new Error('Google Identity Services loaded but is not usable.'));
        }
      });
      script.addEventListener('error', () => {
        clearTimeout(timer);
        reject(new Error('Google Identity Services could not be loaded.'));
      });
    });
  }

  // The error page has nothing to wait for.
  document.addEventListener('DOMContentLoaded', () => {
    if (config().view === 'error') setState('error');
  });

  return {config, setState, show, showError, clearError, showNotice, post, errorText, whenGIS};
})();

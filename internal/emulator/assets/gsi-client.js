// Google Identity Services stand-in, served by the local Google emulator at
// /gsi/client. It offers the part of GIS's API that web apps use
// (google.accounts.id and google.accounts.oauth2) with the same callback
// shapes, and runs every flow through the emulator's own account chooser in
// a popup (or a redirect). No eval, no inline styles: it works under a
// strict Content-Security-Policy that allows the emulator's origin.
(function () {
  'use strict';

  // The emulator's origin, filled in by the server from the URL the browser
  // used. Only messages from this origin are trusted.
  var EMULATOR = "__EMULATOR_ORIGIN__";

  if (window.google && window.google.accounts && window.google.accounts.id && window.google.accounts.oauth2) {
    return; // loaded twice
  }

  function randomHex(bytes) {
    var a = new Uint8Array(bytes);
    window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  function log(msg) {
    if (window.console && console.warn) { console.warn('[GSI_EMULATOR]: ' + msg); }
  }

  function buildURL(path, params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v !== undefined && v !== null && v !== '') { q.set(k, String(v)); }
    });
    return EMULATOR + path + '?' + q.toString();
  }

  // ---- popups --------------------------------------------------------------

  var current = null; // the open popup: {win, finish}

  // openPopup opens the emulator's chooser at path and calls onResult with
  // the response the popup posts back, or onError({type}) when the popup
  // cannot open or is closed first. It must run inside a user gesture.
  function openPopup(path, params, onResult, onError) {
    if (current) { current.finish(); current = null; }
    var channel = randomHex(16);
    params.channel_id = channel;
    params.origin = window.location.origin;
    var w = 500, h = 640;
    var left = Math.max(0, (window.screenX || 0) + ((window.outerWidth || w) - w) / 2);
    var top = Math.max(0, (window.screenY || 0) + ((window.outerHeight || h) - h) / 2);
    var win = null;
    try {
      win = window.open(buildURL(path, params), 'g_emulator_popup_' + channel,
        'popup=yes,width=' + w + ',height=' + h + ',left=' + Math.round(left) + ',top=' + Math.round(top));
    } catch (e) {
      win = null;
    }
    if (!win) {
      setTimeout(function () { onError({ type: 'popup_failed_to_open', message: 'Failed to open popup window' }); }, 0);
      return;
    }
    var done = false;
    var closedSince = 0;
    function finish() {
      done = true;
      clearInterval(timer);
      window.removeEventListener('message', onMessage);
      if (current && current.win === win) { current = null; }
    }
    function onMessage(ev) {
      if (done || ev.origin !== EMULATOR || ev.source !== win) { return; }
      var d = ev.data;
      if (!d || d.emulator !== 'google-emulator' || d.channel !== channel || typeof d.response !== 'object') { return; }
      finish();
      onResult(d.response);
    }
    // A closed popup is reported only after a grace period, so that its last
    // message (posted just before it closed itself) is taken first.
    var timer = setInterval(function () {
      if (done) { return; }
      var closed = false;
      try { closed = win.closed; } catch (e) { closed = false; }
      if (!closed) { closedSince = 0; return; }
      if (!closedSince) { closedSince = Date.now(); return; }
      if (Date.now() - closedSince >= 500) {
        finish();
        onError({ type: 'popup_closed', message: 'Popup window closed' });
      }
    }, 100);
    window.addEventListener('message', onMessage);
    current = { win: win, finish: finish };
  }

  function callback(fn, arg) {
    if (typeof fn === 'string') { fn = window[fn]; }
    if (typeof fn === 'function') { fn(arg); }
  }

  // ---- google.accounts.id --------------------------------------------------

  var idConfig = null;
  var styleAdded = false;

  function addStyle() {
    if (styleAdded) { return; }
    styleAdded = true;
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = EMULATOR + '/gsi/style';
    document.head.appendChild(link);
  }

  // setCsrfCookie sets the double-submit cookie of GIS redirect mode on the
  // page's origin. SameSite=None (which needs Secure) lets the cookie ride
  // on the emulator's cross-site POST to login_uri; plain http origins that
  // refuse Secure cookies fall back to a cookie without SameSite.
  function setCsrfCookie(value) {
    document.cookie = 'g_csrf_token=' + value + '; path=/; SameSite=None; Secure';
    if (document.cookie.indexOf('g_csrf_token=' + value) < 0) {
      document.cookie = 'g_csrf_token=' + value + '; path=/';
    }
  }

  function signIn(trigger) {
    if (!idConfig || !idConfig.client_id) {
      log('google.accounts.id.initialize() was not called with a client_id.');
      return;
    }
    var params = {
      client_id: idConfig.client_id,
      nonce: idConfig.nonce,
      login_hint: idConfig.login_hint,
      hd: idConfig.hd,
      context: idConfig.context
    };
    if (idConfig.ux_mode === 'redirect') {
      var token = randomHex(16);
      setCsrfCookie(token);
      params.ux_mode = 'redirect';
      params.login_uri = idConfig.login_uri || window.location.href.split('#')[0];
      params.g_csrf_token = token;
      params.origin = window.location.origin;
      window.location.assign(buildURL('/gsi/select', params));
      return;
    }
    params.ux_mode = 'popup';
    openPopup('/gsi/select', params, function (resp) {
      if (resp.error || !resp.credential) { return; } // cancelled: GIS calls nothing
      callback(idConfig.callback, {
        credential: resp.credential,
        select_by: trigger || resp.select_by || 'btn',
        client_id: resp.client_id,
        clientId: resp.clientId
      });
    }, function () { /* closed or blocked: GIS calls nothing */ });
  }

  var buttonTexts = {
    signin_with: 'Sign in with Google',
    signup_with: 'Sign up with Google',
    continue_with: 'Continue with Google',
    signin: 'Sign in'
  };

  function googleMark() {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 48 48');
    svg.setAttribute('width', '18');
    svg.setAttribute('height', '18');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('class', 'gsi-emu-mark');
    [
      ['#EA4335', 'M24 9.5c3.54 0 6.71 1.22 9.21 3.6l6.85-6.85C35.9 2.38 30.47 0 24 0 14.62 0 6.51 5.38 2.56 13.22l7.98 6.19C12.43 13.72 17.74 9.5 24 9.5z'],
      ['#4285F4', 'M46.98 24.55c0-1.57-.15-3.09-.38-4.55H24v9.02h12.94c-.58 2.96-2.26 5.48-4.78 7.18l7.73 6c4.51-4.18 7.09-10.36 7.09-17.65z'],
      ['#FBBC05', 'M10.53 28.59c-.48-1.45-.76-2.99-.76-4.59s.27-3.14.76-4.59l-7.98-6.19C.92 16.46 0 20.12 0 24c0 3.88.92 7.54 2.56 10.78l7.97-6.19z'],
      ['#34A853', 'M24 48c6.48 0 11.93-2.13 15.89-5.81l-7.73-6c-2.15 1.45-4.92 2.3-8.16 2.3-6.26 0-11.57-4.22-13.47-9.91l-7.98 6.19C6.51 42.62 14.62 48 24 48z']
    ].forEach(function (p) {
      var path = document.createElementNS(ns, 'path');
      path.setAttribute('fill', p[0]);
      path.setAttribute('d', p[1]);
      svg.appendChild(path);
    });
    return svg;
  }

  function renderButton(parent, options) {
    if (!parent || !parent.appendChild) {
      log('renderButton needs a parent element.');
      return;
    }
    var o = options || {};
    addStyle();
    var text = buttonTexts[o.text] || buttonTexts.signin_with;
    var btn = document.createElement('button');
    btn.type = 'button';
    btn.className = ['gsi-emu-button',
      'gsi-emu-theme-' + (o.theme || 'outline'),
      'gsi-emu-size-' + (o.size || 'large'),
      'gsi-emu-shape-' + (o.shape || 'rectangular'),
      o.type === 'icon' ? 'gsi-emu-icon' : 'gsi-emu-standard'].join(' ');
    btn.setAttribute('data-text', o.text || 'signin_with');
    btn.appendChild(googleMark());
    if (o.type === 'icon') {
      btn.setAttribute('aria-label', text);
      btn.title = text;
    } else {
      var label = document.createElement('span');
      label.className = 'gsi-emu-label';
      label.textContent = text;
      btn.appendChild(label);
    }
    var width = parseInt(o.width, 10);
    if (width > 0 && o.type !== 'icon') {
      btn.style.width = Math.min(400, Math.max(200, width)) + 'px'; // CSSOM, allowed by CSP
    }
    btn.addEventListener('click', function () {
      if (typeof o.click_listener === 'function') { o.click_listener(); }
      signIn('btn');
    });
    while (parent.firstChild) { parent.removeChild(parent.firstChild); }
    parent.appendChild(btn);
  }

  function momentNotification() {
    return {
      getMomentType: function () { return 'display'; },
      isDisplayMoment: function () { return true; },
      isDisplayed: function () { return false; },
      isNotDisplayed: function () { return true; },
      getNotDisplayedReason: function () { return 'opt_out_or_no_session'; },
      isSkippedMoment: function () { return false; },
      getSkippedReason: function () { return ''; },
      isDismissedMoment: function () { return false; },
      getDismissedReason: function () { return ''; }
    };
  }

  var id = {
    initialize: function (config) {
      idConfig = Object.assign({}, config || {});
      if (!idConfig.client_id) { log('Missing required parameter "client_id".'); }
    },
    renderButton: renderButton,
    // One Tap is not emulated: the prompt is "not displayed", which apps
    // must handle anyway (FedCM, opt-out, no session).
    prompt: function (listener) {
      if (typeof listener === 'function') {
        setTimeout(function () { listener(momentNotification()); }, 0);
      }
    },
    cancel: function () {},
    disableAutoSelect: function () {
      document.cookie = 'g_state={"i_l":0}; path=/';
    },
    storeCredential: function (cred, cb) { if (typeof cb === 'function') { cb(); } },
    revoke: function (hint, done) {
      var clientId = idConfig && idConfig.client_id;
      var body = new URLSearchParams({ client_id: clientId || '', hint: hint || '' });
      fetch(EMULATOR + '/gsi/revoke', { method: 'POST', body: body, credentials: 'omit' })
        .then(function (r) { return r.json(); })
        .then(function (j) { callback(done, { successful: !!j.successful, error: j.error }); })
        .catch(function () { callback(done, { successful: false, error: 'network_error' }); });
    }
  };

  // ---- google.accounts.oauth2 ----------------------------------------------

  function required(config, names) {
    for (var i = 0; i < names.length; i++) {
      if (!config[names[i]]) {
        throw new Error('Missing required parameter \'' + names[i] + '\'.');
      }
    }
  }

  function oauthCallbacks(config) {
    return {
      result: function (resp) { callback(config.callback, resp); },
      error: function (err) { callback(config.error_callback, err); }
    };
  }

  // authParams are the authorization request's parameters that both OAuth
  // clients send: the client id from c, the rest from o (c with the
  // request's overrides).
  function authParams(c, o, responseType, prompt) {
    return {
      gsiwebsdk: '3',
      client_id: c.client_id,
      scope: o.scope,
      response_type: responseType,
      include_granted_scopes: o.include_granted_scopes === false ? 'false' : 'true',
      state: o.state,
      login_hint: o.login_hint || o.hint,
      hd: o.hd || o.hosted_domain,
      prompt: prompt
    };
  }

  function initCodeClient(config) {
    var c = Object.assign({}, config || {});
    required(c, ['client_id', 'scope']);
    return {
      requestCode: function () {
        var params = authParams(c, c, 'code', c.prompt !== undefined ? c.prompt : (c.select_account ? 'select_account' : undefined));
        params.access_type = 'offline';
        if (c.ux_mode === 'redirect') {
          params.redirect_uri = c.redirect_uri || window.location.href.split(/[?#]/)[0];
          window.location.assign(buildURL('/o/oauth2/v2/auth', params));
          return;
        }
        params.redirect_uri = 'postmessage';
        var cb = oauthCallbacks(c);
        openPopup('/o/oauth2/v2/auth', params, cb.result, cb.error);
      }
    };
  }

  function initTokenClient(config) {
    var c = Object.assign({}, config || {});
    required(c, ['client_id', 'scope']);
    return {
      requestAccessToken: function (overrides) {
        var o = Object.assign({}, c, overrides || {});
        var params = authParams(c, o, 'token', o.prompt !== undefined ? o.prompt : 'select_account');
        params.redirect_uri = 'postmessage';
        var cb = oauthCallbacks(o);
        openPopup('/o/oauth2/v2/auth', params, cb.result, cb.error);
      }
    };
  }

  function scopesOf(resp) {
    return (resp && typeof resp.scope === 'string') ? resp.scope.split(' ') : [];
  }

  var oauth2 = {
    initCodeClient: initCodeClient,
    initTokenClient: initTokenClient,
    hasGrantedAllScopes: function (resp) {
      var granted = scopesOf(resp);
      var wanted = Array.prototype.slice.call(arguments, 1);
      return wanted.length > 0 && wanted.every(function (s) { return granted.indexOf(s) >= 0; });
    },
    hasGrantedAnyScope: function (resp) {
      var granted = scopesOf(resp);
      var wanted = Array.prototype.slice.call(arguments, 1);
      return wanted.some(function (s) { return granted.indexOf(s) >= 0; });
    },
    revoke: function (token, done) {
      fetch(EMULATOR + '/revoke', { method: 'POST', body: new URLSearchParams({ token: token || '' }), credentials: 'omit' })
        .then(function (r) {
          if (r.ok) { return { successful: true }; }
          return r.json().then(function (j) {
            return { successful: false, error: j.error, error_description: j.error_description };
          });
        })
        .then(function (resp) { callback(done, resp); })
        .catch(function () { callback(done, { successful: false, error: 'network_error' }); });
    }
  };

  window.google = window.google || {};
  window.google.accounts = window.google.accounts || {};
  window.google.accounts.id = id;
  window.google.accounts.oauth2 = oauth2;

  if (typeof window.onGoogleLibraryLoad === 'function') {
    setTimeout(function () { window.onGoogleLibraryLoad(); }, 0);
  }
})();

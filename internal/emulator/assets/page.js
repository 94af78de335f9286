// Script of the emulator's own pages. The pages' CSP allows no inline script,
// so the answer of a popup flow is read from data attributes here.
(function () {
  'use strict';

  // Popup answer: hand it to the opener, to the opener's origin only.
  var result = document.getElementById('emu-result');
  if (result) {
    var target = result.getAttribute('data-target-origin');
    var message = JSON.parse(result.getAttribute('data-message'));
    var opener = window.opener;
    if (opener && !opener.closed && target) {
      opener.postMessage(message, target);
      // Give the opener a moment to take the message before the window goes.
      setTimeout(function () { window.close(); }, 100);
    } else {
      document.getElementById('emu-status').hidden = true;
      document.getElementById('emu-no-opener').hidden = false;
    }
  }

  // form_post answers (GIS redirect mode): submit at once.
  var form = document.getElementById('emu-form-post');
  if (form) {
    form.submit();
  }
})();

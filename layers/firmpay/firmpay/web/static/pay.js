/* The pay page's own script: no inline code (CSP), no framework, no build step. */
(function () {
  'use strict';

  function tokenBase() {
    // /pay/<token> -> /api/pay/<token>
    var parts = window.location.pathname.split('/');
    var token = parts[parts.indexOf('pay') + 1] || '';
    return '/api/pay/' + encodeURIComponent(token);
  }

  function postJson(path, body) {
    return fetch(tokenBase() + path, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      credentials: 'same-origin',
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return {status: response.status, ok: response.ok, data: data};
      });
    });
  }

  function payData() {
    var el = document.getElementById('pay-data');
    return el ? JSON.parse(el.textContent) : {};
  }

  var form = document.getElementById('new-link-form');
  if (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = form.querySelector('button');
      var status = document.getElementById('new-link-status');
      button.disabled = true;
      postJson('/new-link').then(function (answer) {
        status.hidden = false;
        status.textContent = (answer.data && answer.data.message) ||
          'If this link can be renewed, a new one is on its way to the email address on file.';
      });
    });
  }

  window.FirmPay = {postJson: postJson, payData: payData, tokenBase: tokenBase};
})();

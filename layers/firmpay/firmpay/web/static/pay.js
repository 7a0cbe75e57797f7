/* The pay page's own script: no inline code (CSP), no framework, no build step. */
(function () {
  'use strict';

  /* The path in front of the API's routes ("/<stage>" on API Gateway's own URL, "" on a custom
   * domain): the server reads it from the request and puts it in the page. */
  function basePath() {
    var meta = document.querySelector('meta[name="firmpay-base-path"]');
    return meta ? meta.getAttribute('content') || '' : '';
  }

  function tokenBase() {
    // <base>/pay/<token> -> <base>/api/pay/<token>
    var base = basePath();
    var parts = window.location.pathname.slice(base.length).split('/');
    var token = parts[parts.indexOf('pay') + 1] || '';
    return base + '/api/pay/' + encodeURIComponent(token);
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

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && typeof text === 'string') { el.textContent = text; }
  }

  /* After a payment: the summary's "Paid so far", "Payment processing" and "Balance due" follow what
   * the server says. The result's balance shows at once; the payable's view (GET /api/pay/<token>)
   * then brings all three, so a processing eCheck shows as processing, not as paid. */
  function updateTotals(result) {
    if (result && result.balance) { setText('balance-due', result.balance.formatted); }
    return fetch(tokenBase(), {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (view) {
        if (!view || !view.payable) { return; }
        var payable = view.payable;
        setText('paid-so-far', payable.paid.formatted);
        setText('pending-amount', payable.pending.formatted);
        setText('balance-due', payable.balance.formatted);
        var pending = document.getElementById('pending-row');
        if (pending) { pending.hidden = !payable.pending.amount_minor; }
      })
      .catch(function () { /* the result's balance is already shown */ });
  }

  /* "1500.50", "1,500.50", "1500,50" (fr-CA), "$ 25" -> minor units; null when not an amount. */
  function parseAmount(text) {
    var cleaned = String(text || '').trim().replace(/[\s$\u00a0\u202f]/g, '');
    if (/^\d{1,3}(,\d{3})+(\.\d{1,2})?$/.test(cleaned)) {
      cleaned = cleaned.replace(/,/g, '');
    } else if (/^\d+,\d{1,2}$/.test(cleaned)) {
      cleaned = cleaned.replace(',', '.');
    }
    var match = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(cleaned);
    if (!match) { return null; }
    var cents = (match[2] || '') + '00';
    return parseInt(match[1], 10) * 100 + parseInt(cents.slice(0, 2), 10);
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

  /* Show message in the error box id; focusId: the field to mark invalid and focus. */
  function showError(id, message, focusId) {
    var box = document.getElementById(id);
    box.textContent = message;
    box.hidden = false;
    if (focusId) {
      var field = document.getElementById(focusId);
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }
  }

  /* The amount typed in the section's "<prefix>-amount" field, in minor units, or null after saying
     why it cannot be paid (empty, over the balance due, under the minimum). */
  function checkAmount(prefix, section, data) {
    var field = prefix + '-amount';
    var minor = parseAmount(document.getElementById(field).value);
    if (minor === null || minor <= 0) {
      showError(field + '-error', 'Enter the amount to pay, for example 250.00.', field);
      return null;
    }
    if (minor > data.balance_minor) {
      showError(field + '-error', 'The amount is more than the balance due (' +
        section.dataset.balanceFormatted + ').', field);
      return null;
    }
    if (minor < data.minimum_minor) {
      showError(field + '-error', 'The minimum payment is ' + section.dataset.minimumFormatted + '.', field);
      return null;
    }
    return minor;
  }

  window.FirmPay = {
    postJson: postJson, payData: payData, basePath: basePath, tokenBase: tokenBase, updateTotals: updateTotals, parseAmount: parseAmount,
    showError: showError, checkAmount: checkAmount
  };
})();

/* "Pay by eCheck" (US firms) on pay.js's method core: Plaid Link -> server exchange -> review with
 * the withdrawal authorization -> submit -> "processing" result. No inline code (CSP). The bank login
 * stays in Plaid Link; the page only ever sees a one-time public token, the bank's name and the last
 * four digits. The browser never decides an outcome: the server answers every step. */
(function () {
  'use strict';

  function byId(id) { return document.getElementById(id); }

  // Never let the browser submit the form itself, even when the core failed to load.
  var guarded = byId('echeck-form');
  if (guarded) { guarded.addEventListener('submit', function (event) { event.preventDefault(); }); }

  function start() {
    if (!byId('echeck-section') || !window.FirmPay) { return; }
    var pay = window.FirmPay;
    var text = pay.text;
    var showError = pay.showError;
    var selectButton = byId('echeck-select-bank');
    var problem = byId('echeck-link-problem');
    var bank = {connection: null, link: null};
    var section = null;

    // -- switching between card and eCheck -----------------------------------------------------------

    function showCard() {
      if (section.state.busy || !byId('card-section')) { return; }
      pay.showMethod('card');
    }

    var toEcheck = byId('card-to-echeck');
    if (toEcheck) { toEcheck.addEventListener('click', function () { pay.showMethod('echeck'); }); }
    byId('echeck-to-card').addEventListener('click', showCard);
    byId('echeck-link-card').addEventListener('click', showCard);

    // -- messages --------------------------------------------------------------------------------

    function setBankStatus(value) {
      byId('echeck-bank-status').textContent = value;
    }

    /* Link ended without an account, or the bank could not be used: say so, offer both ways on. */
    function showLinkProblem(message) {
      byId('echeck-link-message').textContent = message;
      problem.hidden = false;
      selectButton.hidden = true;
      byId('echeck-try-again').focus();
    }

    function hideLinkProblem() {
      problem.hidden = true;
      selectButton.hidden = false;
    }

    function forgetConnection() {
      bank.connection = null;
      setBankStatus('');
      selectButton.textContent = text('select_bank');
    }

    // -- Plaid Link ----------------------------------------------------------------------------------

    function holderName() {
      var name = byId('echeck-name').value.trim();
      if (!name) {
        showError('echeck-name-error', text('holder_name_missing'), 'echeck-name');
        return null;
      }
      return name;
    }

    function closeLink() {
      if (bank.link) {
        bank.link.destroy();
        bank.link = null;
      }
    }

    function selectBank() {
      if (section.state.busy) { return; }
      section.clearErrors();
      var name = holderName();
      if (name === null) { return; }
      hideLinkProblem();
      if (!window.Plaid || typeof window.Plaid.create !== 'function') {
        showLinkProblem(text('bank_sign_in_unavailable'));
        return;
      }
      section.setBusy(selectButton, true, text('opening_bank'));
      pay.postJson('/echeck/link-token', {holder_name: name}).then(function (answer) {
        if (!answer.ok) {
          section.setBusy(selectButton, false);
          section.handleError(answer, 'link');
          return;
        }
        closeLink();
        // A fresh link token every time: one that ended in success cannot open Link again.
        bank.link = window.Plaid.create({
          token: answer.data.link_token,
          onSuccess: function (publicToken, metadata) { exchange(publicToken, metadata || {}, name); },
          onExit: function (error, metadata) { linkExited(error, metadata || {}); }
        });
        bank.link.open();
      }).catch(function () {
        section.setBusy(selectButton, false);
        showLinkProblem(text('unreachable'));
      });
    }

    function linkExited(error, metadata) {
      section.setBusy(selectButton, false);
      closeLink();
      var institution = metadata.institution && metadata.institution.name;
      var message;
      if (error) {
        message = text('bank_error', {message: error.display_message || error.error_message || text('bank_error_unknown')});
      } else if (institution) {
        message = text('link_left_at', {institution: institution});
      } else {
        message = text('link_left');
      }
      showLinkProblem(message);
    }

    function exchange(publicToken, metadata, name) {
      closeLink();
      var account = (metadata.accounts && metadata.accounts[0]) || {};
      var accountId = account.id || metadata.account_id;
      setBankStatus(text('connecting_account'));
      pay.postJson('/echeck/exchange', {public_token: publicToken, account_id: accountId, holder_name: name})
        .then(function (answer) {
          section.setBusy(selectButton, false);
          if (!answer.ok) {
            setBankStatus('');
            section.handleError(answer, 'link');
            return;
          }
          bank.connection = answer.data;
          setBankStatus(answer.data.label);
          selectButton.textContent = text('use_another_bank');
          section.reviewButton.focus();
        }).catch(function () {
          section.setBusy(selectButton, false);
          setBankStatus('');
          showLinkProblem(text('unreachable'));
        });
    }

    selectButton.addEventListener('click', selectBank);
    byId('echeck-try-again').addEventListener('click', selectBank);

    // -- review and submit ---------------------------------------------------------------------------

    function reviewBody(amount) {
      if (holderName() === null) { return null; }
      if (!bank.connection) {
        showError('echeck-error', text('select_bank_first'));
        selectButton.focus();
        return null;
      }
      return {amount_minor: amount, connection_id: bank.connection.connection_id};
    }

    function showReview(answer) {
      byId('echeck-review-currency').textContent = answer.amount.currency;
      byId('echeck-review-bank').textContent = answer.method_label;
      byId('echeck-review-holder').textContent = byId('echeck-name').value.trim();
      byId('echeck-mandate-text').textContent = answer.authorization_text || '';
      byId('echeck-authorize').checked = false;
    }

    function submitBody(body) {
      if (!byId('echeck-authorize').checked) {
        // The server refuses it too (422 mandate_required); nothing is sent without the client's yes.
        showError('echeck-authorize-error', text('mandate_required'), 'echeck-authorize');
        return null;
      }
      body.authorize_debit = true;
      return body;
    }

    byId('echeck-authorize').addEventListener('change', function (event) {
      if (event.target.checked) {
        byId('echeck-authorize-error').hidden = true;
        event.target.removeAttribute('aria-invalid');
      }
    });

    function onError(code, message, stage) {
      switch (code) {
        case 'mandate_required':
          showError('echeck-authorize-error', message, 'echeck-authorize');
          return true;
        case 'echeck_limit_exceeded':
          section.backToForm();
          showError('echeck-amount-error', message, 'echeck-amount');
          return true;
        case 'bank_account_not_supported':
        case 'bank_link_failed':
          section.backToForm();
          forgetConnection();
          showLinkProblem(message);
          return true;
        case 'invalid_request':
          if (stage !== 'submit') {
            section.backToForm();
            forgetConnection();
            showLinkProblem(message);
            return true;
          }
          return false;
        default:
          if (stage === 'link' && code !== 'amount_over_balance' && code !== 'amount_below_minimum' &&
              code !== 'review_expired') {
            showLinkProblem(message);
            return true;
          }
          return false;
      }
    }

    section = pay.methodSection({
      prefix: 'echeck',
      failureKey: 'echeck_failure',
      reviewBody: reviewBody,
      showReview: showReview,
      submitBody: submitBody,
      onError: onError
    });
  }

  // Deferred scripts run in document order and pay.js (the core) comes after this one:
  // DOMContentLoaded fires once all of them ran.
  if (window.FirmPay) {
    start();
  } else {
    document.addEventListener('DOMContentLoaded', start);
  }
})();

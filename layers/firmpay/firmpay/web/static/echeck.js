/* "Pay by eCheck" (US firms): Plaid Link -> server exchange -> review with the withdrawal
 * authorization -> submit -> "processing" result. No inline code (CSP). The bank login stays in
 * Plaid Link; the page only ever sees a one-time public token, the bank's name and the last four
 * digits. The browser never decides an outcome: the server answers every step. */
(function () {
  'use strict';

  var STORE_LABEL = 'Securely store this payment method for future use.';
  var MANDATE_REQUIRED = 'Please check the box authorizing the withdrawal before submitting.';

  function byId(id) { return document.getElementById(id); }

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }

  function start() {
    var section = byId('echeck-section');
    if (!section || !window.FirmPay) { return; }
    var pay = window.FirmPay;
    var data = pay.payData();
    var cardSection = byId('card-section');
    var form = byId('echeck-form');
    var panel = byId('echeck-review');
    var selectButton = byId('echeck-select-bank');
    var reviewButton = byId('echeck-review-button');
    var submitButton = byId('echeck-submit');
    var editButton = byId('echeck-edit');
    var problem = byId('echeck-link-problem');
    var state = {connection: null, review: null, busy: false, link: null};

    // Never let the browser submit the form itself.
    form.addEventListener('submit', function (event) { event.preventDefault(); });

    // -- switching between card and eCheck -----------------------------------------------------------

    function showEcheck() {
      if (cardSection) { cardSection.hidden = true; }
      section.hidden = false;
      byId('echeck-title').focus();
    }

    function showCard() {
      if (state.busy || !cardSection) { return; }
      section.hidden = true;
      cardSection.hidden = false;
      var title = byId('card-title');
      if (title) { title.focus(); }
    }

    var toEcheck = byId('card-to-echeck');
    if (toEcheck) { toEcheck.addEventListener('click', showEcheck); }
    byId('echeck-to-card').addEventListener('click', showCard);
    byId('echeck-link-card').addEventListener('click', showCard);

    // -- messages --------------------------------------------------------------------------------

    var showError = pay.showError;

    function clearErrors() {
      ['echeck-amount-error', 'echeck-name-error', 'echeck-error', 'echeck-authorize-error',
        'echeck-submit-error'].forEach(function (id) {
        byId(id).hidden = true;
        byId(id).textContent = '';
      });
      Array.prototype.forEach.call(section.querySelectorAll('[aria-invalid]'), function (field) {
        field.removeAttribute('aria-invalid');
      });
    }

    function setBusy(button, busy, label) {
      state.busy = busy;
      if (busy) {
        button.dataset.label = button.textContent;
        button.textContent = label;
      } else if (button.dataset.label) {
        button.textContent = button.dataset.label;
        delete button.dataset.label;
      }
      button.disabled = busy;
      button.setAttribute('aria-busy', busy ? 'true' : 'false');
      editButton.disabled = busy;
    }

    function setBankStatus(text) {
      byId('echeck-bank-status').textContent = text;
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

    // -- Plaid Link ----------------------------------------------------------------------------------

    function holderName() {
      var name = byId('echeck-name').value.trim();
      if (!name) {
        showError('echeck-name-error', "Enter the account holder's name.", 'echeck-name');
        return null;
      }
      return name;
    }

    function closeLink() {
      if (state.link) {
        state.link.destroy();
        state.link = null;
      }
    }

    function selectBank() {
      if (state.busy) { return; }
      clearErrors();
      var name = holderName();
      if (name === null) { return; }
      hideLinkProblem();
      if (!window.Plaid || typeof window.Plaid.create !== 'function') {
        showLinkProblem('Bank sign-in could not load. Please reload the page, or pay by card.');
        return;
      }
      setBusy(selectButton, true, 'Opening your bank…');
      pay.postJson('/echeck/link-token', {holder_name: name}).then(function (answer) {
        if (!answer.ok) {
          setBusy(selectButton, false);
          handleError(answer, 'link');
          return;
        }
        closeLink();
        // A fresh link token every time: one that ended in success cannot open Link again.
        state.link = window.Plaid.create({
          token: answer.data.link_token,
          onSuccess: function (publicToken, metadata) { exchange(publicToken, metadata || {}, name); },
          onExit: function (error, metadata) { linkExited(error, metadata || {}); }
        });
        state.link.open();
      }).catch(function () {
        setBusy(selectButton, false);
        showLinkProblem('We could not reach the payment service. Check your connection and try again.');
      });
    }

    function linkExited(error, metadata) {
      setBusy(selectButton, false);
      closeLink();
      var institution = metadata.institution && metadata.institution.name;
      var message;
      if (error) {
        message = (error.display_message || error.error_message || 'Something went wrong at your bank.') +
          ' Nothing was withdrawn.';
      } else if (institution) {
        message = 'You left the bank sign-in at ' + institution + ' before choosing an account. ' +
          'Nothing was withdrawn.';
      } else {
        message = 'You left the bank sign-in before choosing an account. Nothing was withdrawn.';
      }
      showLinkProblem(message);
    }

    function exchange(publicToken, metadata, name) {
      closeLink();
      var account = (metadata.accounts && metadata.accounts[0]) || {};
      var accountId = account.id || metadata.account_id;
      setBankStatus('Connecting your account…');
      pay.postJson('/echeck/exchange', {public_token: publicToken, account_id: accountId, holder_name: name})
        .then(function (answer) {
          setBusy(selectButton, false);
          if (!answer.ok) {
            setBankStatus('');
            handleError(answer, 'link');
            return;
          }
          state.connection = answer.data;
          setBankStatus(answer.data.label);
          selectButton.textContent = 'Use a different bank';
          reviewButton.focus();
        }).catch(function () {
          setBusy(selectButton, false);
          setBankStatus('');
          showLinkProblem('We could not reach the payment service. Check your connection and try again.');
        });
    }

    selectButton.addEventListener('click', selectBank);
    byId('echeck-try-again').addEventListener('click', selectBank);

    // -- the form ------------------------------------------------------------------------------------

    function checkAmount() {
      return pay.checkAmount('echeck', section, data);
    }

    function review() {
      if (state.busy) { return; }
      clearErrors();
      var amount = checkAmount();
      if (amount === null) { return; }
      if (holderName() === null) { return; }
      if (!state.connection) {
        showError('echeck-error', 'Select your bank first.');
        selectButton.focus();
        return;
      }
      setBusy(reviewButton, true, 'Checking…');
      pay.postJson('/echeck/review', {amount_minor: amount, connection_id: state.connection.connection_id})
        .then(function (answer) {
          setBusy(reviewButton, false);
          if (answer.ok) { showReview(answer.data); } else { handleError(answer, 'review'); }
        }).catch(function () {
          setBusy(reviewButton, false);
          showError('echeck-error', 'We could not reach the payment service. Check your connection and try again.');
        });
    }

    form.addEventListener('submit', review);

    // -- the review panel ----------------------------------------------------------------------------

    function showReview(answer) {
      state.review = answer;
      var kind = answer.payable_kind === 'trust_request' ? 'Trust request ' : 'Bill ';
      byId('echeck-review-amount').textContent = answer.amount.formatted;
      byId('echeck-review-currency').textContent = answer.amount.currency;
      byId('echeck-review-payable').textContent = kind + answer.payable_number;
      byId('echeck-review-destination').textContent = answer.destination_text;
      byId('echeck-review-bank').textContent = answer.method_label;
      byId('echeck-review-holder').textContent = byId('echeck-name').value.trim();
      byId('echeck-mandate-text').textContent = answer.authorization_text || '';
      var text = answer.store_consent_text || '';
      byId('echeck-store-text').textContent =
        text.indexOf(STORE_LABEL) === 0 ? text.slice(STORE_LABEL.length).trim() : text;
      byId('echeck-authorize').checked = false;
      byId('echeck-store').checked = false;
      form.hidden = true;
      panel.hidden = false;
      byId('echeck-review-title').focus();
    }

    function backToForm() {
      state.review = null;
      panel.hidden = true;
      form.hidden = false;
    }

    editButton.addEventListener('click', function () {
      if (state.busy) { return; }
      clearErrors();
      backToForm();
      byId('echeck-amount').focus();
    });

    byId('echeck-authorize').addEventListener('change', function (event) {
      if (event.target.checked) {
        byId('echeck-authorize-error').hidden = true;
        event.target.removeAttribute('aria-invalid');
      }
    });

    function submit() {
      if (state.busy || !state.review) { return; }
      clearErrors();
      var authorized = byId('echeck-authorize').checked;
      if (!authorized) {
        // The server refuses it too (422 mandate_required); nothing is sent without the client's yes.
        showError('echeck-authorize-error', MANDATE_REQUIRED, 'echeck-authorize');
        return;
      }
      setBusy(submitButton, true, 'Processing…');
      pay.postJson('/echeck/submit', {
        review_id: state.review.review_id, authorize_debit: authorized, store_method: byId('echeck-store').checked
      }).then(function (answer) {
        setBusy(submitButton, false);
        handleResult(answer);
      }).catch(function () {
        setBusy(submitButton, false);
        showError('echeck-submit-error', 'We could not reach the payment service. Check your connection and try again.');
      });
    }

    submitButton.addEventListener('click', submit);

    function handleResult(answer) {
      if (!answer.ok) {
        handleError(answer, 'submit');
        return;
      }
      var result = answer.data;
      if (result.status === 'failed' || result.status === 'canceled') {
        backToForm();
        showError('echeck-error', result.message);
        return;
      }
      showResult(result);
    }

    // -- outcomes ------------------------------------------------------------------------------------

    function showResult(result) {
      var box = byId('result');
      var title = result.status === 'succeeded' ? 'Payment successful' : 'Payment submitted';
      var message = result.message || '';
      box.textContent = '';
      box.appendChild(element('h2', title));
      var facts = element('dl', undefined, 'facts result-facts');
      [['Amount', result.amount.formatted], ['Method', result.method_label], ['Reference', result.reference],
        ['New balance', result.balance.formatted]].forEach(function (pair) {
        var row = element('div');
        row.appendChild(element('dt', pair[0]));
        row.appendChild(element('dd', pair[1]));
        facts.appendChild(row);
      });
      box.appendChild(facts);
      // The heading already says it: "Payment submitted. The withdrawal is ..." -> "The withdrawal is ...".
      box.appendChild(element('p', message.indexOf(title + '. ') === 0 ? message.slice(title.length + 2) : message));
      Array.prototype.forEach.call(byId('payment-options').children, function (child) {
        if (child !== box) { child.hidden = true; }
      });
      pay.updateTotals(result);
      box.hidden = false;
      box.focus();
    }

    function forgetConnection() {
      state.connection = null;
      setBankStatus('');
      selectButton.textContent = 'Select your bank';
    }

    function handleError(answer, stage) {
      var body = answer.data || {};
      var message = body.message || 'Something went wrong on our side. Nothing was withdrawn. Please try again.';
      switch (body.code) {
        case 'mandate_required':
          showError('echeck-authorize-error', message, 'echeck-authorize');
          return;
        case 'amount_over_balance':
        case 'amount_below_minimum':
        case 'echeck_limit_exceeded':
          backToForm();
          showError('echeck-amount-error', message, 'echeck-amount');
          return;
        case 'bank_account_not_supported':
        case 'bank_link_failed':
          backToForm();
          forgetConnection();
          showLinkProblem(message);
          return;
        case 'invalid_request':
          if (stage !== 'submit') {
            backToForm();
            forgetConnection();
            showLinkProblem(message);
            return;
          }
          break;
        case 'review_expired':
          backToForm();
          showError('echeck-error', message);
          return;
        default:
          break;
      }
      if (stage === 'submit') {
        showError('echeck-submit-error', message);
      } else if (stage === 'link') {
        showLinkProblem(message);
      } else {
        showError('echeck-error', message);
      }
    }
  }

  // Deferred scripts run in document order and pay.js (the FirmPay helpers) comes after this one:
  // DOMContentLoaded fires once all of them ran.
  if (window.FirmPay) {
    start();
  } else {
    document.addEventListener('DOMContentLoaded', start);
  }
})();

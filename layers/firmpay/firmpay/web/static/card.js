/* "Pay by Credit Card": Stripe Elements -> server review -> submit -> 3-D Secure -> result.
 * No inline code (CSP). The card never reaches our servers: Stripe.js turns it into a PaymentMethod
 * id. The browser never decides an outcome either: the server reads it from Stripe every time. */
(function () {
  'use strict';

  var STORE_LABEL = 'Securely store this payment method for future use.';

  function byId(id) { return document.getElementById(id); }

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }

  function start() {
    var section = byId('card-section');
    if (!section) { return; }
    var form = byId('card-form');
    // Never let the browser submit the form itself (it would put the billing address in a URL).
    form.addEventListener('submit', function (event) { event.preventDefault(); });
    if (!window.FirmPay) { return; }
    var data = window.FirmPay.payData();
    var panel = byId('card-review');
    var reviewButton = byId('card-review-button');
    var submitButton = byId('card-submit');
    var editButton = byId('card-edit');
    var state = {review: null, busy: false, captchaToken: null, captchaWidget: null, retry: null};
    var captchaLoading = null;
    var stripe = null;
    var cardElement = null;

    var showError = window.FirmPay.showError;

    function clearErrors() {
      ['card-amount-error', 'card-error', 'billing-error', 'card-submit-error'].forEach(function (id) {
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
      }
      button.disabled = busy;
      button.setAttribute('aria-busy', busy ? 'true' : 'false');
      editButton.disabled = busy;
    }

    try {
      stripe = window.Stripe(data.stripe_key);
      cardElement = stripe.elements().create('card', {hidePostalCode: true});
      cardElement.mount('#card-element');
      cardElement.on('change', function (event) {
        if (event && event.error) { showError('card-error', event.error.message); }
      });
    } catch (error) {
      showError('card-error', 'Card payments are unavailable right now. Please reload the page or try again later.');
      reviewButton.disabled = true;
      return;
    }

    // -- the form ---------------------------------------------------------------------------------

    function checkAmount() {
      return window.FirmPay.checkAmount('card', section, data);
    }

    function checkBilling() {
      var fields = [
        ['billing-name', 'name', 1, 'Enter the cardholder name.'],
        ['billing-line1', 'line1', 1, 'Enter the billing address.'],
        ['billing-city', 'city', 1, 'Enter the city.'],
        ['billing-state', 'state', 2, 'Enter the state or province.'],
        ['billing-postal', 'postal_code', 3, 'Enter the postal code.']
      ];
      var billing = {country: byId('billing-country').value};
      for (var i = 0; i < fields.length; i += 1) {
        var value = byId(fields[i][0]).value.trim();
        if (value.length < fields[i][2]) {
          showError('billing-error', fields[i][3], fields[i][0]);
          return null;
        }
        billing[fields[i][1]] = value;
      }
      return billing;
    }

    function takeCaptcha() {
      var token = state.captchaToken;
      state.captchaToken = null;
      return token;
    }

    function withCaptcha(body) {
      var token = takeCaptcha();
      if (token) { body.captcha_token = token; }
      return body;
    }

    function review() {
      if (state.busy) { return; }
      clearErrors();
      var amount = checkAmount();
      if (amount === null) { return; }
      var billing = checkBilling();
      if (!billing) { return; }
      setBusy(reviewButton, true, 'Checking…');
      stripe.createPaymentMethod({
        type: 'card',
        card: cardElement,
        billing_details: {
          name: billing.name,
          address: {line1: billing.line1, city: billing.city, state: billing.state,
            postal_code: billing.postal_code, country: billing.country}
        }
      }).then(function (result) {
        if (result.error || !result.paymentMethod) {
          throw {field: 'card-error', message: (result.error && result.error.message) ||
            'Please check the card number, expiry date and security code.'};
        }
        return window.FirmPay.postJson('/card/review', withCaptcha({
          amount_minor: amount, payment_method_id: result.paymentMethod.id, billing: billing
        }));
      }).then(function (answer) {
        setBusy(reviewButton, false);
        if (answer.ok) { showReview(answer.data); } else { handleError(answer, 'review'); }
      }).catch(function (error) {
        setBusy(reviewButton, false);
        showThrown(error, 'card-error');
      });
    }

    form.addEventListener('submit', review);

    // -- the review panel -------------------------------------------------------------------------

    function showReview(answer) {
      state.review = answer;
      var kind = answer.payable_kind === 'trust_request' ? 'Trust request ' : 'Bill ';
      byId('review-amount').textContent = answer.amount.formatted;
      byId('review-payable').textContent = kind + answer.payable_number;
      byId('review-destination').textContent = answer.destination_text;
      byId('review-card').textContent = answer.card_brand + ' ending in ' + answer.card_last4;
      byId('review-name').textContent = answer.billing_name;
      var text = answer.store_consent_text || '';
      byId('card-store-text').textContent = text.indexOf(STORE_LABEL) === 0 ? text.slice(STORE_LABEL.length).trim() : text;
      byId('card-store').checked = false;
      form.hidden = true;
      panel.hidden = false;
      byId('card-review-title').focus();
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
      byId('card-amount').focus();
    });

    function submit() {
      if (state.busy || !state.review) { return; }
      clearErrors();
      setBusy(submitButton, true, 'Processing…');
      window.FirmPay.postJson('/card/submit', withCaptcha({
        review_id: state.review.review_id, store_method: byId('card-store').checked
      })).then(handleResult).catch(function (error) {
        showThrown(error, 'card-submit-error');
      }).then(function () {
        setBusy(submitButton, false);
      });
    }

    submitButton.addEventListener('click', submit);

    function handleResult(answer) {
      if (!answer.ok) { return handleError(answer, 'submit'); }
      var result = answer.data;
      if (result.status === 'requires_action') { return authenticate(result); }
      if (result.status === 'failed') {
        backToForm();
        if (cardElement.clear) { cardElement.clear(); }
        showError('card-error', result.message);
        byId('card-element').scrollIntoView({block: 'center'});
        return null;
      }
      showResult(result);
      return null;
    }

    // The server confirms (automatic confirmation); Stripe.js only runs the bank's challenge:
    // handleNextAction, the "finalize payments on the server" call (docs/decisions.md says why not
    // handleCardAction, which is for manual confirmation only).
    function authenticate(result) {
      return stripe.handleNextAction({clientSecret: result.client_secret}).then(function () {
        // Whatever Stripe.js reports, the server reads the intent and decides.
        return window.FirmPay.postJson('/card/complete', {payment_id: result.payment_id});
      }).then(function (answer) {
        if (answer.ok && answer.data.status === 'requires_action') {
          showError('card-submit-error', 'Your bank is still waiting for you to confirm this payment. ' +
            'Nothing has been charged. Select Submit payment to try again.');
          return null;
        }
        return handleResult(answer);
      });
    }

    // -- outcomes ---------------------------------------------------------------------------------

    function showResult(result) {
      var box = byId('result');
      var succeeded = result.status === 'succeeded';
      box.textContent = '';
      box.appendChild(element('h2', succeeded ? 'Payment successful' : 'Payment submitted'));
      var facts = element('dl', undefined, 'facts result-facts');
      [['Amount', result.amount.formatted], ['Method', result.method_label], ['Reference', result.reference],
        ['New balance', result.balance.formatted]].forEach(function (pair) {
        var row = element('div');
        row.appendChild(element('dt', pair[0]));
        row.appendChild(element('dd', pair[1]));
        facts.appendChild(row);
      });
      box.appendChild(facts);
      box.appendChild(element('p', succeeded ? 'A confirmation email is on its way.' : result.message));
      var options = byId('payment-options');
      Array.prototype.forEach.call((options || section.parentNode).children, function (child) {
        if (child !== box) { child.hidden = true; }
      });
      window.FirmPay.updateTotals(result);
      box.hidden = false;
      box.focus();
    }

    function handleError(answer, stage) {
      var body = answer.data || {};
      var message = body.message || 'Something went wrong on our side. Nothing was charged. Please try again.';
      switch (body.code) {
        case 'captcha_required':
          showCaptcha(stage, message);
          return null;
        case 'amount_over_balance':
        case 'amount_below_minimum':
          backToForm();
          showError('card-amount-error', message, 'card-amount');
          return null;
        case 'invalid_payment_method':
          backToForm();
          showError('card-error', message);
          return null;
        case 'invalid_request':
          if (stage === 'review') {
            showError('billing-error', 'Please check the billing information and try again.');
            return null;
          }
          break;
        case 'review_expired':
          backToForm();
          showError('card-error', message);
          return null;
        default:
          break;
      }
      showError(stage === 'review' ? 'card-error' : 'card-submit-error', message);
      return null;
    }

    function showThrown(error, where) {
      if (error && error.field) {
        showError(error.field, error.message);
      } else {
        showError(where, 'We could not reach the payment service. Check your connection and try again.');
      }
    }

    // -- reCAPTCHA, only once the card-testing limits are reached ------------------------------------

    function loadCaptcha() {
      if (!captchaLoading) {
        captchaLoading = new Promise(function (resolve, reject) {
          var script = document.createElement('script');
          var url = data.recaptcha_js_url;
          script.src = url + (url.indexOf('?') === -1 ? '?' : '&') + 'render=explicit';
          script.async = true;
          script.addEventListener('load', function () { window.grecaptcha.ready(function () { resolve(window.grecaptcha); }); });
          script.addEventListener('error', reject);
          document.head.appendChild(script);
        });
      }
      return captchaLoading;
    }

    function showCaptcha(stage, message) {
      state.retry = stage;
      byId('card-captcha-text').textContent = message;
      byId('card-captcha').hidden = false;
      loadCaptcha().then(function (grecaptcha) {
        if (state.captchaWidget === null) {
          state.captchaWidget = grecaptcha.render('card-captcha-widget', {
            sitekey: data.recaptcha_site_key,
            callback: function (token) {
              state.captchaToken = token;
              byId('card-captcha').hidden = true;
              if (state.retry === 'review') { review(); } else { submit(); }
            }
          });
        } else {
          grecaptcha.reset(state.captchaWidget);
        }
      }).catch(function () {
        showError('card-error', 'The security check could not load. Please reload the page.');
      });
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

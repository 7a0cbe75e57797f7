/* "Pay by Credit Card" on pay.js's method core: Stripe Elements -> server review -> submit ->
 * 3-D Secure -> result. No inline code (CSP). The card never reaches our servers: Stripe.js turns it
 * into a PaymentMethod id. The browser never decides an outcome either: the server reads it from
 * Stripe every time. */
(function () {
  'use strict';

  function byId(id) { return document.getElementById(id); }

  // Never let the browser submit the form itself (it would put the billing address in a URL),
  // even when the rest of the page's scripts failed to load.
  var guarded = byId('card-form');
  if (guarded) { guarded.addEventListener('submit', function (event) { event.preventDefault(); }); }

  function start() {
    if (!byId('card-section') || !window.FirmPay) { return; }
    var pay = window.FirmPay;
    var text = pay.text;
    var showError = pay.showError;
    var data = pay.payData();
    var captcha = {token: null, widget: null, retry: null, loading: null};
    var stripe = null;
    var cardElement = null;
    var section = null;

    // -- the card element and the billing fields ------------------------------------------------

    function billingDetails() {
      var fields = [
        ['billing-name', 'name', 1, 'billing_name_missing'],
        ['billing-line1', 'line1', 1, 'billing_address_missing'],
        ['billing-city', 'city', 1, 'billing_city_missing'],
        ['billing-state', 'state', 2, 'billing_state_missing'],
        ['billing-postal', 'postal_code', 3, 'billing_postal_missing']
      ];
      var billing = {country: byId('billing-country').value};
      for (var i = 0; i < fields.length; i += 1) {
        var value = byId(fields[i][0]).value.trim();
        if (value.length < fields[i][2]) {
          showError(fields[i][0] + '-error', text(fields[i][3]), fields[i][0]);
          return null;
        }
        billing[fields[i][1]] = value;
      }
      return billing;
    }

    function withCaptcha(body) {
      var token = captcha.token;
      captcha.token = null;
      if (token) { body.captcha_token = token; }
      return body;
    }

    function reviewBody(amount) {
      if (!stripe) { return null; }
      var billing = billingDetails();
      if (!billing) { return null; }
      return stripe.createPaymentMethod({
        type: 'card',
        card: cardElement,
        billing_details: {
          name: billing.name,
          address: {line1: billing.line1, city: billing.city, state: billing.state,
            postal_code: billing.postal_code, country: billing.country}
        }
      }).then(function (result) {
        if (result.error || !result.paymentMethod) {
          throw {field: 'card-error', message: (result.error && result.error.message) || text('card_unreadable')};
        }
        return withCaptcha({amount_minor: amount, payment_method_id: result.paymentMethod.id, billing: billing});
      });
    }

    function showReview(answer) {
      byId('card-review-card').textContent = text('card_ending', {brand: answer.card_brand, last4: answer.card_last4});
      byId('card-review-name').textContent = answer.billing_name;
    }

    // The server confirms (automatic confirmation); Stripe.js only runs the bank's challenge:
    // handleNextAction, the "finalize payments on the server" call (docs/decisions.md says why not
    // handleCardAction, which is for manual confirmation only).
    function authenticate(result) {
      return stripe.handleNextAction({clientSecret: result.client_secret}).then(function () {
        // Whatever Stripe.js reports, the server reads the intent and decides.
        return pay.postJson('/card/complete', {payment_id: result.payment_id});
      }).then(function (answer) {
        if (answer.ok && answer.data.status === 'requires_action') {
          showError('card-submit-error', text('bank_still_waiting'));
          return null;
        }
        return section.handleResult(answer);
      });
    }

    function onError(code, message, stage) {
      switch (code) {
        case 'captcha_required':
          showCaptcha(stage, message);
          return true;
        case 'invalid_payment_method':
          section.backToForm();
          showError('card-error', message);
          return true;
        case 'invalid_request':
          if (stage === 'review') {
            showError('billing-error', text('billing_invalid'));
            return true;
          }
          return false;
        default:
          return false;
      }
    }

    section = pay.methodSection({
      prefix: 'card',
      failureKey: 'card_failure',
      reviewBody: reviewBody,
      showReview: showReview,
      submitBody: withCaptcha,
      onResult: function (result) { return result.status === 'requires_action' ? authenticate(result) : undefined; },
      onFailed: function () { if (cardElement.clear) { cardElement.clear(); } },
      onError: onError
    });

    try {
      stripe = window.Stripe(data.stripe_key, {locale: pay.pageLanguage()});
      cardElement = stripe.elements({locale: pay.pageLanguage()}).create('card', {hidePostalCode: true});
      cardElement.mount('#card-element');
      cardElement.on('change', function (event) {
        if (event && event.error) { showError('card-error', event.error.message); }
      });
    } catch (error) {
      showError('card-error', text('card_unavailable'));
      section.reviewButton.disabled = true;
      return;
    }

    // -- reCAPTCHA, only once the card-testing limits are reached ------------------------------------

    function loadCaptcha() {
      if (!captcha.loading) {
        captcha.loading = new Promise(function (resolve, reject) {
          var script = document.createElement('script');
          var url = data.recaptcha_js_url;
          script.src = url + (url.indexOf('?') === -1 ? '?' : '&') + 'render=explicit&hl=' +
            encodeURIComponent(pay.pageLanguage());
          script.async = true;
          script.addEventListener('load', function () { window.grecaptcha.ready(function () { resolve(window.grecaptcha); }); });
          script.addEventListener('error', reject);
          document.head.appendChild(script);
        });
      }
      return captcha.loading;
    }

    function showCaptcha(stage, message) {
      captcha.retry = stage;
      byId('card-captcha-text').textContent = message;
      byId('card-captcha').hidden = false;
      loadCaptcha().then(function (grecaptcha) {
        if (captcha.widget === null) {
          captcha.widget = grecaptcha.render('card-captcha-widget', {
            sitekey: data.recaptcha_site_key,
            callback: function (token) {
              captcha.token = token;
              byId('card-captcha').hidden = true;
              if (captcha.retry === 'review') { section.review(); } else { section.submit(); }
            }
          });
        } else {
          grecaptcha.reset(captcha.widget);
        }
      }).catch(function () {
        showError('card-error', text('captcha_unavailable'));
      });
    }
  }

  // Deferred scripts run in document order and pay.js (the core) comes after this one:
  // DOMContentLoaded fires once all of them ran.
  if (window.FirmPay) {
    start();
  } else {
    document.addEventListener('DOMContentLoaded', start);
  }
})();

/* The pay page's one script core: no inline code (CSP), no framework, no build step.
 *
 * FirmPay.methodSection() is what every payment method's section does the same way: check the
 * amount, ask the server for a review, Edit back to the form as the client filled it, one request at
 * a time (a double click submits once), the result, and errors shown next to what they are about and
 * announced. card.js and echeck.js plug in only what differs (their fields, their review facts, their
 * submit body, their own error codes). Every text shown comes from the page (#pay-text), in the
 * page's language. */
(function () {
  'use strict';

  function byId(id) { return document.getElementById(id); }

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

  function jsonData(id) {
    var el = byId(id);
    return el ? JSON.parse(el.textContent) : {};
  }

  function payData() { return jsonData('pay-data'); }

  var texts = null;

  /* The page's text ``key`` with its {name}s filled in from ``values``. */
  function text(key, values) {
    if (texts === null) { texts = jsonData('pay-text'); }
    var message = texts[key];
    if (typeof message !== 'string') {
      // A missing text is a bug of the page; the browser tests fail on console errors.
      window.console.error('FirmPay: no text "' + key + '"');
      return '';
    }
    return message.replace(/\{(\w+)\}/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  /* The language the page is in: the API answers its messages in it too. */
  function pageLanguage() {
    return document.documentElement.getAttribute('lang') || 'en-US';
  }

  function postJson(path, body) {
    return fetch(tokenBase() + path, {
      method: 'POST',
      headers: {'Content-Type': 'application/json', 'Accept-Language': pageLanguage()},
      credentials: 'same-origin',
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return {status: response.status, ok: response.ok, data: data};
      });
    });
  }

  function setText(id, value) {
    var el = byId(id);
    if (el && typeof value === 'string') { el.textContent = value; }
  }

  function element(tag, value, className) {
    var node = document.createElement(tag);
    if (value !== undefined) { node.textContent = value; }
    if (className) { node.className = className; }
    return node;
  }

  /* After a payment: the summary's "Paid so far", "Payment processing" and "Balance due" follow what
   * the server says. The result's balance shows at once; the payable's view (GET /api/pay/<token>)
   * then brings all three, so a processing eCheck shows as processing, not as paid. */
  function updateTotals(result) {
    if (result && result.balance) { setText('balance-due', result.balance.formatted); }
    return fetch(tokenBase(), {
      credentials: 'same-origin', headers: {'Accept': 'application/json', 'Accept-Language': pageLanguage()}
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (view) {
        if (!view || !view.payable) { return; }
        var payable = view.payable;
        setText('paid-so-far', payable.paid.formatted);
        setText('pending-amount', payable.pending.formatted);
        setText('balance-due', payable.balance.formatted);
        var pending = byId('pending-row');
        if (pending) { pending.hidden = !payable.pending.amount_minor; }
      })
      .catch(function () { /* the result's balance is already shown */ });
  }

  /* "1500.50", "1,500.50", "1500,50" and "1 500,50" (fr-CA), "$ 25" -> minor units; null when not an amount. */
  function parseAmount(value) {
    var cleaned = String(value || '').trim().replace(/[\s$\u00a0\u202f]/g, '');
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

  /* Show ``message`` in the error box ``id`` (announced: role="alert"); ``focusId``: the field it is
   * about, marked invalid and focused. */
  function showError(id, message, focusId) {
    var box = byId(id);
    box.textContent = message;
    box.hidden = false;
    if (focusId) {
      var field = byId(focusId);
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }
  }

  /* The amount typed in the section's "<prefix>-amount" field, in minor units, or null after saying
     why it cannot be paid (empty, over the balance due, under the minimum). */
  function checkAmount(prefix, section, data) {
    var field = prefix + '-amount';
    var minor = parseAmount(byId(field).value);
    if (minor === null || minor <= 0) {
      showError(field + '-error', text('amount_invalid'), field);
      return null;
    }
    if (minor > data.balance_minor) {
      showError(field + '-error', text('amount_over_balance', {balance: section.dataset.balanceFormatted}), field);
      return null;
    }
    if (minor < data.minimum_minor) {
      showError(field + '-error', text('amount_below_minimum', {minimum: section.dataset.minimumFormatted}), field);
      return null;
    }
    return minor;
  }

  /* Show the section of method ``prefix`` in place of the others, its heading focused. */
  function showMethod(prefix) {
    var options = byId('payment-options');
    if (!options) { return; }
    Array.prototype.forEach.call(options.querySelectorAll('section.pay-card'), function (section) {
      section.hidden = section.id !== prefix + '-section';
    });
    var title = byId(prefix + '-title');
    if (title) { title.focus(); }
  }

  var sections = {};

  /* One payment method's section. ``method``:
   *   prefix            the ids' prefix and the API's path segment ("card" -> /card/review, /card/submit)
   *   reviewBody(amount, section)   the review request's body (or a promise of it), or null after the
   *                     method said what is missing; may throw / reject {field, message}
   *   showReview(answer)            fill in the method's own review facts
   *   submitBody(body)  add to the submit request's body, or null to refuse (the method says why)
   *   onResult(result)  handle a result first (e.g. the bank's challenge); undefined lets the core do it
   *   onFailed()        the payment failed: the method forgets what cannot be reused
   *   onError(code, message, stage)  true when the method showed the error itself
   *   failureKey        the text for an unexpected failure ("Nothing was charged / withdrawn")
   * Returns the section's controls, for the method's own steps. */
  function methodSection(method) {
    var prefix = method.prefix;
    var section = byId(prefix + '-section');
    var form = byId(prefix + '-form');
    var panel = byId(prefix + '-review');
    var reviewButton = byId(prefix + '-review-button');
    var submitButton = byId(prefix + '-submit');
    var editButton = byId(prefix + '-edit');
    var data = payData();
    var state = {review: null, busy: false};

    function clearErrors() {
      Array.prototype.forEach.call(section.querySelectorAll('.error'), function (box) {
        box.hidden = true;
        box.textContent = '';
      });
      Array.prototype.forEach.call(section.querySelectorAll('[aria-invalid]'), function (field) {
        field.removeAttribute('aria-invalid');
      });
    }

    /* One request at a time: the button says what is happening and every step ignores clicks. */
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

    function showThrown(error, where) {
      if (error && error.field) {
        showError(error.field, error.message);
      } else {
        showError(where, text('unreachable'));
      }
    }

    // -- the form ---------------------------------------------------------------------------------

    function review() {
      if (state.busy) { return; }
      clearErrors();
      var amount = checkAmount(prefix, section, data);
      if (amount === null) { return; }
      var body = method.reviewBody(amount);
      if (body === null) { return; }
      setBusy(reviewButton, true, text('checking'));
      Promise.resolve(body).then(function (request) {
        return postJson('/' + prefix + '/review', request);
      }).then(function (answer) {
        setBusy(reviewButton, false);
        if (answer.ok) { showReview(answer.data); } else { handleError(answer, 'review'); }
      }).catch(function (error) {
        setBusy(reviewButton, false);
        showThrown(error, prefix + '-error');
      });
    }

    form.addEventListener('submit', review);

    // -- the review panel -------------------------------------------------------------------------

    function showReview(answer) {
      state.review = answer;
      var kind = answer.payable_kind === 'trust_request' ? 'trust_request_number' : 'bill_number';
      setText(prefix + '-review-amount', answer.amount.formatted);
      setText(prefix + '-review-payable', text(kind, {number: answer.payable_number}));
      setText(prefix + '-review-destination', answer.destination_text);
      // The checkbox's label already says the consent's first sentence; the rest goes under it.
      var consent = answer.store_consent_text || '';
      var label = text('store_label') + '.';
      setText(prefix + '-store-text', consent.indexOf(label) === 0 ? consent.slice(label.length).trim() : consent);
      byId(prefix + '-store').checked = false;
      method.showReview(answer);
      form.hidden = true;
      panel.hidden = false;
      byId(prefix + '-review-title').focus();
    }

    /* Back to the form as the client left it: nothing they typed is asked for again. */
    function backToForm() {
      state.review = null;
      panel.hidden = true;
      form.hidden = false;
    }

    editButton.addEventListener('click', function () {
      if (state.busy) { return; }
      clearErrors();
      backToForm();
      byId(prefix + '-amount').focus();
    });

    function submit() {
      if (state.busy || !state.review) { return; }
      clearErrors();
      var body = {review_id: state.review.review_id, store_method: byId(prefix + '-store').checked};
      if (method.submitBody) { body = method.submitBody(body); }
      if (body === null) { return; }
      setBusy(submitButton, true, text('processing'));
      postJson('/' + prefix + '/submit', body).then(handleResult).catch(function (error) {
        showThrown(error, prefix + '-submit-error');
      }).then(function () {
        setBusy(submitButton, false);
      });
    }

    submitButton.addEventListener('click', submit);

    function handleResult(answer) {
      if (!answer.ok) { return handleError(answer, 'submit'); }
      var result = answer.data;
      if (method.onResult) {
        var handled = method.onResult(result);
        if (handled !== undefined) { return handled; }
      }
      if (result.status === 'failed' || result.status === 'canceled') {
        backToForm();
        if (method.onFailed) { method.onFailed(); }
        showError(prefix + '-error', result.message);
        byId(prefix + '-error').scrollIntoView({block: 'center'});
        return null;
      }
      showResult(result);
      return null;
    }

    // -- outcomes ---------------------------------------------------------------------------------

    function showResult(result) {
      var box = byId('result');
      var title = text(result.status === 'succeeded' ? 'result_succeeded' : 'result_submitted');
      var message = result.message || '';
      box.textContent = '';
      box.appendChild(element('h2', title));
      var facts = element('dl', undefined, 'facts result-facts');
      [[text('amount'), result.amount.formatted], [text('method'), result.method_label],
        [text('reference'), result.reference], [text('new_balance'), result.balance.formatted]].forEach(function (pair) {
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
      updateTotals(result);
      box.hidden = false;
      box.focus();
    }

    function handleError(answer, stage) {
      var body = answer.data || {};
      var message = body.message || text(method.failureKey);
      if (method.onError && method.onError(body.code, message, stage)) { return null; }
      switch (body.code) {
        case 'amount_over_balance':
        case 'amount_below_minimum':
          backToForm();
          showError(prefix + '-amount-error', message, prefix + '-amount');
          return null;
        case 'review_expired':
          backToForm();
          showError(prefix + '-error', message);
          return null;
        default:
          break;
      }
      showError(stage === 'submit' ? prefix + '-submit-error' : prefix + '-error', message);
      return null;
    }

    var controls = {
      section: section, form: form, data: data, state: state, reviewButton: reviewButton,
      clearErrors: clearErrors, setBusy: setBusy, backToForm: backToForm, showThrown: showThrown,
      handleError: handleError, handleResult: handleResult, review: review, submit: submit
    };
    sections[prefix] = controls;
    return controls;
  }

  /* The expired-link page: "Email me a new link". */
  var newLinkForm = byId('new-link-form');
  if (newLinkForm) {
    newLinkForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = newLinkForm.querySelector('button');
      var status = byId('new-link-status');
      button.disabled = true;
      postJson('/new-link').then(function () {
        status.hidden = false;
        status.textContent = text('new_link_requested');
      });
    });
  }

  window.FirmPay = {
    postJson: postJson, payData: payData, basePath: basePath, tokenBase: tokenBase, updateTotals: updateTotals,
    parseAmount: parseAmount, showError: showError, checkAmount: checkAmount, text: text,
    pageLanguage: pageLanguage, methodSection: methodSection, showMethod: showMethod, sections: sections
  };
})();

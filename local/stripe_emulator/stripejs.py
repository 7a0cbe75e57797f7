"""What the emulator's fake Stripe.js lacks and FirmPay's card page uses, as Stripe documents it.

localstripe's ``/js.stripe.com/v3/`` offers ``createToken`` and ``confirmCardPayment`` only. The
pay page creates a PaymentMethod in the browser and lets the server confirm, so it needs:

- ``stripe.createPaymentMethod({type: 'card', card: element, billing_details})`` (and the older
  ``createPaymentMethod('card', element, {billing_details})``): ``{paymentMethod}`` or
  ``{error}``; an incomplete card is a ``validation_error`` (``incomplete_number``,
  ``incomplete_expiry``, ``incomplete_cvc``) without any request, as Stripe.js does. Stripe accepts
  ``POST /v1/payment_methods`` with the publishable key, which localstripe refuses: the middleware
  below accepts it (``key=pk_...`` in the body, like ``/v1/tokens``).
- ``stripe.handleCardAction(clientSecret)`` (and ``handleNextAction({clientSecret})``): the same
  test modal as ``confirmCardPayment`` ("Complete authentication" / "Fail authentication"), then
  ``{paymentIntent}``, or ``{error}`` with code ``payment_intent_authentication_failure`` and the
  intent, as Stripe answers a failed or abandoned challenge.
"""

from __future__ import annotations

from typing import Any

EXTENSION_JS = r"""
/* FirmPay's extension of the emulator's Stripe.js (see local/stripe_emulator/stripejs.py). */
(function () {
  'use strict';
  const makeStripe = window.Stripe;

  function validation(code, message) {
    return {error: {type: 'validation_error', code: code, message: message}};
  }

  async function post(url, body) {
    const response = await fetch(LOCALSTRIPE_BASE_API + url, {method: 'POST', body: JSON.stringify(body)});
    const data = await response.json().catch(() => ({}));
    return {ok: response.status === 200 && !data.error, data: data};
  }

  window.Stripe = function (apiKey, options) {
    const stripe = makeStripe(apiKey, options);

    stripe.createPaymentMethod = async function (first, element, extra) {
      const data = typeof first === 'string'
        ? Object.assign({type: first, card: element}, extra || {})
        : Object.assign({}, first);
      if (data.type !== 'card' || !data.card) {
        return {error: {type: 'invalid_request_error', message: 'Only card payment methods are emulated.'}};
      }
      const card = (data.card.value && data.card.value.card) || {};
      const number = String(card.number || '').replace(/\s/g, '');
      if (number.length < 16) { return validation('incomplete_number', 'Your card number is incomplete.'); }
      if (!card.exp_month || String(card.exp_year || '').length < 4) {
        return validation('incomplete_expiry', "Your card's expiration date is incomplete.");
      }
      if (String(card.cvc || '').length < 3) {
        return validation('incomplete_cvc', "Your card's security code is incomplete.");
      }
      try {
        const answer = await post('/v1/payment_methods', {
          key: apiKey,
          type: 'card',
          card: {number: number, exp_month: card.exp_month, exp_year: card.exp_year, cvc: card.cvc},
          billing_details: data.billing_details || {}
        });
        return answer.ok ? {paymentMethod: answer.data} : {error: answer.data.error || answer.data};
      } catch (err) {
        return {error: {type: 'api_connection_error', message: String(err)}};
      }
    };

    stripe.handleCardAction = async function (clientSecret) {
      const found = /^(pi_\w+)_secret_/.exec(clientSecret || '');
      if (!found) { return {error: {type: 'invalid_request_error', message: 'Invalid client secret.'}}; }
      const success = await openModal('3D Secure\nDo you want to confirm or cancel?',
        'Complete authentication', 'Fail authentication');
      try {
        const answer = await post('/v1/payment_intents/' + found[1] + '/_authenticate?success=' + success,
          {key: apiKey, client_secret: clientSecret});
        if (!answer.ok) { return {error: answer.data.error || answer.data}; }
        if (!success) {
          return {error: {
            type: 'invalid_request_error', code: 'payment_intent_authentication_failure',
            message: 'We are unable to authenticate your payment method. Please choose a different ' +
              'payment method and try again.',
            payment_intent: answer.data
          }};
        }
        return {paymentIntent: answer.data};
      } catch (err) {
        return {error: {type: 'api_connection_error', message: String(err)}};
      }
    };

    stripe.handleNextAction = function (options) {
      return stripe.handleCardAction((options || {}).clientSecret);
    };
    return stripe;
  };
})();
"""


def stripejs_middleware() -> Any:
    """Serve Stripe.js with the extension appended; create PaymentMethods with the publishable key."""
    from aiohttp import web
    from localstripe.errors import UserError, json_response
    from localstripe.resources import PaymentMethod
    from localstripe.server import get_post_data

    @web.middleware
    async def stripejs(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "GET" and request.path == "/js.stripe.com/v3/":
            original = await handler(request)
            return web.Response(text=original.text + EXTENSION_JS, content_type="application/javascript")
        if (
            request.method == "POST"
            and request.path == "/v1/payment_methods"
            and "Authorization" not in request.headers
        ):
            data = await get_post_data(request, remove_auth=False) or {}
            key = data.pop("key", None)
            if not (isinstance(key, str) and key.startswith("pk_")):
                return await handler(request)
            for ignored in ("payment_user_agent", "referrer"):
                data.pop(ignored, None)
            try:
                return json_response(PaymentMethod._api_create(**data)._export())
            except UserError as error:
                return error.to_response()
        return await handler(request)

    return stripejs


def install(app: Any) -> None:
    """Add the extension to localstripe's app once."""
    if not getattr(app, "_firmpay_stripejs", False):
        app.middlewares.insert(0, stripejs_middleware())
        app._firmpay_stripejs = True

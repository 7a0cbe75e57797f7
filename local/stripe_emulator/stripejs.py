"""What the emulator's fake Stripe.js lacks and FirmPay's card page uses, with the preconditions
Stripe.js documents for each function (so a page that real Stripe.js would refuse fails here too).

localstripe's ``/js.stripe.com/v3/`` offers ``createToken`` and ``confirmCardPayment`` only, and
accepts any call. This extension adds or replaces, as the Stripe.js reference describes them:

- ``Stripe(publishableKey, {locale})``: throws an IntegrationError unless the key is a publishable
  key (``pk_``) ("Initializing Stripe.js", docs.stripe.com/js/initializing); ``locale`` (``fr``,
  ``fr-CA``) puts the validation errors below in French, as Stripe.js localizes its error strings.
- ``stripe.createPaymentMethod({type: 'card', card: element, billing_details})`` (and the older
  ``createPaymentMethod('card', element, {billing_details})``): ``type`` is required and the card
  Element must be mounted (Stripe.js throws "We could not retrieve data from the specified
  Element" otherwise); ``{paymentMethod}`` or ``{error}``; an incomplete card is a
  ``validation_error`` (``incomplete_number``, ``incomplete_expiry``, ``incomplete_cvc``) without
  any request. Stripe accepts ``POST /v1/payment_methods`` with the publishable key, which
  localstripe refuses: the middleware below accepts it (``key=pk_...`` in the body). Its
  parameters go through the same contract check as the server's (``contract.py``).
- ``stripe.handleCardAction(clientSecret)`` (docs.stripe.com/js/payment_intents/handle_card_action):
  for the manual confirmation flow only. The intent (read with the client secret, as Stripe.js
  does) must be in ``requires_action`` (otherwise it throws) and created with
  ``confirmation_method: manual``; an automatic-confirmation intent is refused with the error real
  Stripe.js gives ("The PaymentIntent supplied does not require manual server-side
  confirmation..."). After the challenge the intent is ``requires_confirmation``: the server
  confirms it again.
- ``stripe.handleNextAction({clientSecret})`` (docs.stripe.com/js/payment_intents/handle_next_action,
  the "finalize payments on the server" flow): the intent must be in ``requires_action``
  (otherwise it throws); after the challenge it is ``succeeded`` (or ``processing``).
- ``stripe.confirmCardPayment(clientSecret)``: the client secret must be the intent's and the
  intent not already succeeded, processing or canceled (``payment_intent_unexpected_state``).
- A failed or abandoned challenge is ``{error}`` with code ``payment_intent_authentication_failure``
  and the intent, as Stripe answers it.
"""

from __future__ import annotations

import re
from typing import Any

EXTENSION_JS = r"""
/* FirmPay's extension of the emulator's Stripe.js (see local/stripe_emulator/stripejs.py). */
(function () {
  'use strict';
  const makeStripe = window.Stripe;

  function IntegrationError(message) {
    const error = new Error(message);
    error.name = 'IntegrationError';
    return error;
  }

  const VALIDATION = {
    en: {
      incomplete_number: 'Your card number is incomplete.',
      incomplete_expiry: "Your card's expiration date is incomplete.",
      incomplete_cvc: "Your card's security code is incomplete."
    },
    fr: {
      incomplete_number: 'Le numéro de votre carte est incomplet.',
      incomplete_expiry: "La date d'expiration de votre carte est incomplète.",
      incomplete_cvc: 'Le code de sécurité de votre carte est incomplet.'
    }
  };

  function validation(code, message) {
    return {error: {type: 'validation_error', code: code, message: message}};
  }

  async function post(url, body) {
    const response = await fetch(LOCALSTRIPE_BASE_API + url, {method: 'POST', body: JSON.stringify(body)});
    const data = await response.json().catch(() => ({}));
    return {ok: response.status === 200 && !data.error, data: data};
  }

  function intentId(clientSecret) {
    const found = /^(pi_\w+)_secret_\w+$/.exec(typeof clientSecret === 'string' ? clientSecret : '');
    return found ? found[1] : null;
  }

  window.Stripe = function (apiKey, options) {
    if (typeof apiKey !== 'string' || apiKey.indexOf('pk_') !== 0) {
      throw IntegrationError('Invalid API Key provided: Stripe.js takes a publishable key (pk_...).');
    }
    const stripe = makeStripe(apiKey, options);
    // ``locale`` "localize[s] error strings for all Stripe.js methods" (Initializing Stripe.js;
    // fr-CA is a supported locale): the stand-in has the validation errors in English and French.
    const messages = VALIDATION[/^fr/i.test(String((options || {}).locale || '')) ? 'fr' : 'en'];

    /* The intent as Stripe.js reads it: with the publishable key and the client secret. */
    async function retrieveIntent(clientSecret) {
      const id = intentId(clientSecret);
      if (!id) {
        throw IntegrationError('Invalid value for clientSecret: it should be the client_secret of a PaymentIntent.');
      }
      const query = '?key=' + encodeURIComponent(apiKey) + '&client_secret=' + encodeURIComponent(clientSecret);
      const response = await fetch(LOCALSTRIPE_BASE_API + '/v1/payment_intents/' + id + query);
      const data = await response.json().catch(() => ({}));
      if (response.status !== 200 || data.error) {
        return {error: data.error || {type: 'invalid_request_error', message: 'No such payment_intent.'}};
      }
      return {paymentIntent: data};
    }

    async function challenge(clientSecret, intent) {
      const success = await openModal('3D Secure\nDo you want to confirm or cancel?',
        'Complete authentication', 'Fail authentication');
      try {
        const answer = await post('/v1/payment_intents/' + intent.id + '/_authenticate?success=' + success,
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
    }

    stripe.createPaymentMethod = async function (first, element, extra) {
      const data = typeof first === 'string'
        ? Object.assign({type: first, card: element}, extra || {})
        : Object.assign({}, first);
      if (!data.type) { throw IntegrationError('Missing value for createPaymentMethod: type should be a string.'); }
      if (data.type !== 'card') {
        return {error: {type: 'invalid_request_error', message: 'Only card payment methods are emulated.'}};
      }
      if (!data.card || !data.card._inputs) {
        throw IntegrationError('We could not retrieve data from the specified Element. Please make sure the ' +
          'Element you are attempting to use is still mounted.');
      }
      const card = (data.card.value && data.card.value.card) || {};
      const number = String(card.number || '').replace(/\s/g, '');
      if (number.length < 16) { return validation('incomplete_number', messages.incomplete_number); }
      if (!card.exp_month || String(card.exp_year || '').length < 4) {
        return validation('incomplete_expiry', messages.incomplete_expiry);
      }
      if (String(card.cvc || '').length < 3) {
        return validation('incomplete_cvc', messages.incomplete_cvc);
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
      const found = await retrieveIntent(clientSecret);
      if (found.error) { return found; }
      const intent = found.paymentIntent;
      if (intent.status !== 'requires_action') {
        throw IntegrationError('handleCardAction: the PaymentIntent has the status ' + intent.status +
          ', not requires_action.');
      }
      if (intent.confirmation_method !== 'manual') {
        return {error: {
          type: 'invalid_request_error', code: 'payment_intent_unexpected_state',
          message: 'The PaymentIntent supplied does not require manual server-side confirmation. Please use ' +
            'confirmCardPayment instead to complete the payment.',
          payment_intent: intent
        }};
      }
      return challenge(clientSecret, intent);
    };

    stripe.handleNextAction = async function (options) {
      const clientSecret = (options || {}).clientSecret;
      const found = await retrieveIntent(clientSecret);
      if (found.error) { return found; }
      const intent = found.paymentIntent;
      if (intent.status !== 'requires_action') {
        throw IntegrationError('handleNextAction: the PaymentIntent has the status ' + intent.status +
          ', not requires_action.');
      }
      return challenge(clientSecret, intent);
    };

    stripe.confirmCardPayment = async function (clientSecret) {
      const found = await retrieveIntent(clientSecret);
      if (found.error) { return found; }
      const intent = found.paymentIntent;
      if (['succeeded', 'processing', 'canceled', 'requires_capture'].indexOf(intent.status) !== -1) {
        return {error: {
          type: 'invalid_request_error', code: 'payment_intent_unexpected_state',
          message: 'This PaymentIntent could not be confirmed because it has a status of ' + intent.status + '.',
          payment_intent: intent
        }};
      }
      if (intent.status !== 'requires_action') {
        return {error: {type: 'invalid_request_error', message: 'Only the authentication step is emulated.'}};
      }
      return challenge(clientSecret, intent);
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
        if request.method == "GET" and _INTENT_PATH.match(request.path) and "Authorization" not in request.headers:
            return _intent_for_stripe_js(request)
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


_INTENT_PATH = re.compile(r"^/v1/payment_intents/(pi_\w+)$")


def _intent_for_stripe_js(request: Any) -> Any:
    """``GET /v1/payment_intents/{id}?key=pk_...&client_secret=...``: Stripe lets the publishable key
    read an intent whose client secret it names (PaymentIntent retrieve: "client_secret ... required
    when you use a publishable key")."""
    from localstripe.errors import UserError, json_response
    from localstripe.resources import PaymentIntent

    key = request.query.get("key", "")
    secret = request.query.get("client_secret")
    found = _INTENT_PATH.match(request.path)
    assert found is not None
    try:
        if not key.startswith("pk_"):
            raise UserError(401, "Invalid API Key provided.")
        intent = PaymentIntent._api_retrieve(found.group(1))
        if secret != intent.client_secret:
            raise UserError(
                400, "The client_secret provided does not match any associated PaymentIntent on this account."
            )
        return json_response(intent._export())
    except UserError as error:
        return error.to_response()


def install(app: Any) -> None:
    """Add the extension to localstripe's app once."""
    if not getattr(app, "_firmpay_stripejs", False):
        app.middlewares.insert(0, stripejs_middleware())
        app._firmpay_stripejs = True

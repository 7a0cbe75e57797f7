/*
 * The stand-in Link flow, inside the emulator's iframe: intro -> search -> reCAPTCHA (when the bank
 * asks) -> sign-in -> account choice -> success. Built with DOM APIs only (the frame's CSP allows no
 * inline script or style). Each step is checked by the emulator's /link/api/*; results go to the
 * page through postMessage to the origin the SDK script named.
 */
(function () {
  'use strict';

  var SOURCE = 'plaid-link-emulator';
  var params = new URLSearchParams(window.location.search);
  var linkToken = params.get('token') || '';
  var parentOrigin = params.get('origin') || '';
  var modal = document.getElementById('modal');

  // Exit status by the view the user leaves from (Plaid's onExit metadata.status).
  var EXIT_STATUS = {
    CONSENT: null,
    SELECT_INSTITUTION: 'institution_not_found',
    RECAPTCHA: 'requires_credentials',
    CREDENTIAL: 'requires_credentials',
    SELECT_ACCOUNT: 'requires_account_selection'
  };

  var flow = null; // the open Link session, or null when closed

  // -- texts ---------------------------------------------------------------------------------------
  // Link speaks the language its link token was created with (/link/token/create ``language``);
  // the stand-in has English and French (a page in French asks for "fr").
  var TEXTS = {
    en: {
      loading: 'Loading\u2026',
      exit: 'Exit',
      generic: 'Something went wrong. Please try again.',
      locked: 'Your account is locked',
      unavailable: 'Your bank is unavailable',
      wrong: 'Something went wrong',
      error_code: 'Error code: {code}',
      continue: 'Continue',
      connect_title: 'Connect your bank account',
      connect_intro: '{client} uses Plaid to connect your bank account.',
      secure: 'Secure: your credentials go to your bank only.',
      private: 'Private: this app never sees your bank login.',
      banks: 'Banks',
      no_results: 'No results found for \u201c{query}\u201d.',
      select_bank: 'Select your bank',
      search: 'Search for your bank',
      human_title: 'Verify you are human',
      human_intro: '{bank} asks for a quick check before you sign in.',
      not_robot: "I'm not a robot",
      audio: 'If the check asks you to pick pictures, choose its headphones button for an audio challenge instead.',
      username: 'Username',
      password: 'Password',
      submit: 'Submit',
      connecting: 'Connecting\u2026',
      log_in: 'Log in to {bank}',
      sandbox: 'Sandbox credentials: user_good / pass_good',
      choose_account: 'Choose an account to continue.',
      available: '{subtype} \u00b7 ${amount} available',
      select_account: 'Select an account',
      accounts_at: 'Accounts at {bank}',
      success: 'Success',
      connected: 'Your account has been connected.'
    },
    fr: {
      loading: 'Chargement\u2026',
      exit: 'Quitter',
      generic: 'Un problème est survenu. Veuillez réessayer.',
      locked: 'Votre compte est verrouillé',
      unavailable: "Votre banque n'est pas disponible",
      wrong: 'Un problème est survenu',
      error_code: "Code d'erreur\u00a0: {code}",
      continue: 'Continuer',
      connect_title: 'Connectez votre compte bancaire',
      connect_intro: '{client} utilise Plaid pour connecter votre compte bancaire.',
      secure: 'Sécuritaire\u00a0: vos identifiants ne vont qu\u2019à votre banque.',
      private: 'Confidentiel\u00a0: cette application ne voit jamais vos identifiants bancaires.',
      banks: 'Banques',
      no_results: 'Aucun résultat pour «\u00a0{query}\u00a0».',
      select_bank: 'Sélectionnez votre banque',
      search: 'Recherchez votre banque',
      human_title: 'Confirmez que vous êtes une personne',
      human_intro: '{bank} demande une vérification rapide avant la connexion.',
      not_robot: 'Je ne suis pas un robot',
      audio: "Si la vérification vous demande de choisir des images, choisissez plutôt son bouton en forme de casque d'écoute pour un défi audio.",
      username: "Nom d'utilisateur",
      password: 'Mot de passe',
      submit: 'Soumettre',
      connecting: 'Connexion\u2026',
      log_in: 'Connectez-vous à {bank}',
      sandbox: 'Identifiants de test\u00a0: user_good / pass_good',
      choose_account: 'Choisissez un compte pour continuer.',
      available: '{subtype} \u00b7 {amount}\u00a0$ disponibles',
      select_account: 'Sélectionnez un compte',
      accounts_at: 'Comptes chez {bank}',
      success: 'Réussite',
      connected: 'Votre compte a été connecté.'
    }
  };
  var language = 'en';

  function t(key, values) {
    var text = (TEXTS[language] || TEXTS.en)[key] || TEXTS.en[key];
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  // -- messaging ---------------------------------------------------------------------------------

  function post(message) {
    message.source = SOURCE;
    window.parent.postMessage(message, parentOrigin);
  }

  function institutionOf(f) {
    return f && f.institution ? { name: f.institution.name, institution_id: f.institution.institution_id } : null;
  }

  function emit(eventName, extra) {
    var f = flow;
    var metadata = {
      error_type: null,
      error_code: null,
      error_message: null,
      exit_status: null,
      institution_id: f && f.institution ? f.institution.institution_id : null,
      institution_name: f && f.institution ? f.institution.name : null,
      institution_search_query: null,
      link_session_id: f && f.session ? f.session.link_session_id : null,
      mfa_type: null,
      request_id: f ? f.requestId : null,
      selection: null,
      timestamp: new Date().toISOString(),
      view_name: null
    };
    Object.keys(extra || {}).forEach(function (key) {
      metadata[key] = extra[key];
    });
    post({ action: 'event', eventName: eventName, metadata: metadata });
  }

  function transition(view) {
    flow.view = view;
    emit('TRANSITION_VIEW', { view_name: view });
  }

  function errorFields(error) {
    return { error_type: error.error_type, error_code: error.error_code, error_message: error.error_message };
  }

  function linkError(body) {
    return {
      error_type: body.error_type || 'API_ERROR',
      error_code: body.error_code || 'INTERNAL_SERVER_ERROR',
      error_message: body.error_message || 'an unexpected error occurred',
      display_message: body.display_message || null
    };
  }

  function api(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (response) {
      return response.json().then(function (json) {
        if (flow && json.request_id) {
          flow.requestId = json.request_id;
        }
        return { ok: response.ok, body: json };
      });
    }).catch(function () {
      return { ok: false, body: linkError({ display_message: t('generic') }) };
    });
  }

  // -- DOM helpers -------------------------------------------------------------------------------

  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      var value = props[key];
      if (key === 'text') {
        node.textContent = value;
      } else if (key === 'on') {
        Object.keys(value).forEach(function (type) {
          node.addEventListener(type, value[type]);
        });
      } else if (key.indexOf('aria-') === 0 || key === 'role' || key === 'for' || key === 'autocomplete') {
        node.setAttribute(key, value);
      } else {
        node[key] = value;
      }
    });
    (children || []).forEach(function (child) {
      if (child) {
        node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function button(label, onClick, className) {
    return el('button', { type: 'button', className: className || 'primary', text: label, on: { click: onClick } });
  }

  function alertBox() {
    return el('p', { className: 'alert', role: 'alert' });
  }

  // One screen at a time: a bar with the Exit button, a heading, the content.
  function screen(title, children, focusTarget) {
    while (modal.firstChild) {
      modal.removeChild(modal.firstChild);
    }
    var heading = el('h1', { id: 'screen-title', tabIndex: -1, text: title });
    var bar = el('div', { className: 'bar' }, [
      el('span', { className: 'brand', text: 'Plaid' }),
      el('span', { className: 'tag', text: 'local emulator' }),
      el('button', { type: 'button', className: 'close', 'aria-label': t('exit'), text: '\u00d7', on: { click: exit } })
    ]);
    modal.setAttribute('aria-labelledby', 'screen-title');
    modal.appendChild(bar);
    modal.appendChild(el('div', { className: 'content' }, [heading].concat(children)));
    (focusTarget || heading).focus();
  }

  function loading(text) {
    screen(text || t('loading'), [el('div', { className: 'spinner', 'aria-hidden': 'true' })]);
  }

  // -- the flow ----------------------------------------------------------------------------------

  function open() {
    if (flow) {
      return;
    }
    var f = {
      session: null,
      institution: null,
      lastError: null,
      errorStatus: null,
      view: null,
      requestId: null
    };
    flow = f;
    loading();
    post({ action: 'opened' });
    api('/link/api/session', { link_token: linkToken }).then(function (result) {
      if (flow !== f) {
        return;
      }
      if (!result.ok) {
        emit('OPEN');
        failed(linkError(result.body), null);
        return;
      }
      f.session = result.body;
      language = TEXTS[f.session.language] ? f.session.language : 'en';
      document.documentElement.lang = language;
      emit('OPEN');
      intro();
    });
  }

  function exit() {
    var f = flow;
    if (!f) {
      return;
    }
    var status = f.view === 'ERROR' ? f.errorStatus : (EXIT_STATUS[f.view] === undefined ? null : EXIT_STATUS[f.view]);
    emit('EXIT', { exit_status: status });
    post({
      action: 'exit',
      error: f.lastError,
      metadata: {
        institution: institutionOf(f),
        status: status,
        link_session_id: f.session ? f.session.link_session_id : null,
        request_id: f.requestId
      }
    });
    flow = null;
    while (modal.firstChild) {
      modal.removeChild(modal.firstChild);
    }
  }

  function failed(error, status) {
    flow.lastError = error;
    emit('ERROR', errorFields(error));
    if (status !== undefined) {
      showError(error, status);
    }
  }

  function showError(error, status) {
    var f = flow;
    f.lastError = error;
    f.errorStatus = status;
    f.view = 'ERROR';
    emit('TRANSITION_VIEW', { view_name: 'ERROR', error_type: error.error_type, error_code: error.error_code, error_message: error.error_message });
    var titles = {
      ITEM_LOCKED: t('locked'),
      INSTITUTION_DOWN: t('unavailable'),
      INSTITUTION_NOT_RESPONDING: t('unavailable')
    };
    screen(titles[error.error_code] || t('wrong'), [
      el('p', { text: error.display_message || error.error_message }),
      el('p', { className: 'fine', text: t('error_code', { code: error.error_code }) })
    ]);
  }

  function intro() {
    var f = flow;
    transition('CONSENT');
    var next = button(t('continue'), function () {
      if (flow === f) {
        search();
      }
    });
    screen(t('connect_title'), [
      el('p', { text: t('connect_intro', { client: f.session.client_name }) }),
      el('ul', { className: 'points' }, [
        el('li', { text: t('secure') }),
        el('li', { text: t('private') })
      ]),
      next
    ], next);
  }

  function search() {
    var f = flow;
    transition('SELECT_INSTITUTION');
    var sequence = 0;
    var input = el('input', { type: 'text', id: 'search', autocomplete: 'off', spellcheck: false, 'aria-controls': 'results' });
    var results = el('ul', { id: 'results', className: 'results', 'aria-label': t('banks') });
    var status = el('p', { className: 'fine', role: 'status' });

    function show(list, query) {
      while (results.firstChild) {
        results.removeChild(results.firstChild);
      }
      list.forEach(function (institution) {
        results.appendChild(el('li', {}, [
          button(institution.name, function () {
            choose(institution);
          }, 'institution')
        ]));
      });
      status.textContent = list.length ? '' : t('no_results', { query: query });
    }

    function lookup() {
      var query = input.value.trim();
      sequence += 1;
      var mine = sequence;
      if (query) {
        emit('SEARCH_INSTITUTION', { institution_search_query: query });
      }
      api('/link/api/institutions/search', { link_session_id: f.session.link_session_id, query: query }).then(function (result) {
        if (flow !== f || mine !== sequence) {
          return;
        }
        if (!result.ok) {
          failed(linkError(result.body), 'institution_not_found');
          return;
        }
        show(result.body.institutions, query);
      });
    }

    function choose(institution) {
      api('/link/api/institutions/select', {
        link_session_id: f.session.link_session_id,
        institution_id: institution.institution_id
      }).then(function (result) {
        if (flow !== f) {
          return;
        }
        if (!result.ok) {
          failed(linkError(result.body), 'institution_not_found');
          return;
        }
        f.institution = result.body.institution;
        emit('SELECT_INSTITUTION');
        if (f.institution.requires_recaptcha) {
          recaptcha();
        } else {
          signIn();
        }
      });
    }

    input.addEventListener('input', lookup);
    screen(t('select_bank'), [
      el('label', { for: 'search', className: 'label', text: t('search') }),
      input,
      status,
      results
    ], input);
    lookup();
  }

  function recaptcha() {
    var f = flow;
    transition('RECAPTCHA');
    var box = el('input', { type: 'checkbox', id: 'robot' });
    var alert = alertBox();
    var next = button(t('continue'), function () {
      next.disabled = true;
      api('/link/api/recaptcha', { link_session_id: f.session.link_session_id, checked: box.checked }).then(function (result) {
        if (flow !== f) {
          return;
        }
        next.disabled = false;
        if (!result.ok) {
          var error = linkError(result.body);
          if (error.error_code === 'RECAPTCHA_BAD') {
            failed(error);
            alert.textContent = error.display_message;
            box.focus();
          } else {
            failed(error, 'requires_credentials');
          }
          return;
        }
        signIn();
      });
    });
    // No test of skill without another way (WCAG 2.2, 3.3.8): Google's challenge has an audio one.
    screen(t('human_title'), [
      el('p', { text: t('human_intro', { bank: f.institution.name }) }),
      el('div', { className: 'captcha' }, [box, el('label', { for: 'robot', text: t('not_robot') })]),
      el('p', { className: 'fine', id: 'captcha-audio', text: t('audio') }),
      alert,
      next
    ], box);
  }

  function signIn() {
    var f = flow;
    transition('CREDENTIAL');
    var username = el('input', { type: 'text', id: 'username', autocomplete: 'username', spellcheck: false });
    var password = el('input', { type: 'password', id: 'password', autocomplete: 'current-password' });
    var alert = alertBox();
    var submit = el('button', { type: 'submit', className: 'primary', text: t('submit') });
    var form = el('form', { noValidate: true }, [
      el('label', { for: 'username', className: 'label', text: t('username') }),
      username,
      el('label', { for: 'password', className: 'label', text: t('password') }),
      password,
      alert,
      submit
    ]);
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (submit.disabled) {
        return;
      }
      submit.disabled = true;
      submit.textContent = t('connecting');
      alert.textContent = '';
      emit('SUBMIT_CREDENTIALS');
      api('/link/api/credentials', {
        link_session_id: f.session.link_session_id,
        username: username.value,
        password: password.value
      }).then(function (result) {
        if (flow !== f) {
          return;
        }
        submit.disabled = false;
        submit.textContent = t('submit');
        if (result.ok) {
          chooseAccount(result.body.accounts);
          return;
        }
        var error = linkError(result.body);
        if (error.error_code === 'INVALID_CREDENTIALS') {
          failed(error);
          alert.textContent = error.display_message;
          password.value = '';
          password.focus();
        } else if (error.error_code === 'RECAPTCHA_REQUIRED') {
          failed(error);
          recaptcha();
        } else {
          failed(error, 'requires_credentials');
        }
      });
    });
    screen(t('log_in', { bank: f.institution.name }), [
      el('p', { className: 'fine', text: t('sandbox') }),
      form
    ], username);
  }

  function chooseAccount(accounts) {
    var f = flow;
    transition('SELECT_ACCOUNT');
    var alert = alertBox();
    var options = accounts.map(function (account, index) {
      var id = 'account-' + index;
      var radio = el('input', { type: 'radio', name: 'account', id: id, value: account.id, 'aria-describedby': id + '-detail' });
      return el('div', { className: 'option' }, [
        radio,
        el('label', { for: id, text: account.name + ' \u2022\u2022\u2022\u2022' + account.mask }),
        el('span', {
          id: id + '-detail',
          className: 'detail',
          text: t('available', {
            subtype: account.subtype,
            amount: Number(account.available).toFixed(2).replace('.', language === 'fr' ? ',' : '.')
          })
        })
      ]);
    });
    var next = button(t('continue'), function () {
      var checked = modal.querySelector('input[name="account"]:checked');
      if (!checked) {
        alert.textContent = t('choose_account');
        return;
      }
      next.disabled = true;
      emit('SELECT_ACCOUNT', { selection: checked.value });
      api('/link/api/accounts/select', { link_session_id: f.session.link_session_id, account_id: checked.value }).then(function (result) {
        if (flow !== f) {
          return;
        }
        next.disabled = false;
        if (!result.ok) {
          failed(linkError(result.body), 'requires_account_selection');
          return;
        }
        success(result.body);
      });
    });
    screen(t('select_account'), [
      el('fieldset', {}, [el('legend', { text: t('accounts_at', { bank: f.institution.name }) })].concat(options)),
      alert,
      next
    ]);
  }

  function success(result) {
    transition('CONNECTED');
    screen(t('success'), [el('p', { text: t('connected') })]);
    emit('HANDOFF');
    flow = null;
    post({ action: 'success', public_token: result.public_token, metadata: result.metadata });
  }

  // -- wiring ------------------------------------------------------------------------------------

  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') {
      exit();
    }
  });

  window.addEventListener('message', function (event) {
    if (event.source !== window.parent || event.origin !== parentOrigin) {
      return;
    }
    var data = event.data;
    if (!data || typeof data !== 'object' || data.source !== SOURCE) {
      return;
    }
    if (data.action === 'open') {
      open();
    } else if (data.action === 'exit') {
      exit();
    }
  });

  post({ action: 'ready' });
})();

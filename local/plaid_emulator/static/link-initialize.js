/*
 * Stand-in for Plaid's link-initialize.js, served by the local Plaid emulator.
 *
 * window.Plaid.create({token, onSuccess, onExit, onEvent, onLoad}) -> {open(), exit(), destroy()},
 * like the real SDK: Link runs in an iframe served by the emulator (title "Plaid Link") laid over
 * the page, and reports back through postMessage. No eval, no inline script, styles through CSSOM,
 * so a page whose CSP allows this origin in script-src and frame-src can use it.
 */
(function () {
  'use strict';

  if (window.Plaid && window.Plaid.__emulator) {
    return;
  }

  var script = document.currentScript;
  var LINK_ORIGIN = new URL(script ? script.src : '/', window.location.href).origin;
  var SOURCE = 'plaid-link-emulator';
  var LOAD_TIMEOUT_MS = 15000;
  var counter = 0;

  function noop() {}

  function callback(fn) {
    return typeof fn === 'function' ? fn : noop;
  }

  function loadError() {
    return {
      error_type: 'API_ERROR',
      error_code: 'INTERNAL_SERVER_ERROR',
      error_message: 'Link could not be loaded from ' + LINK_ORIGIN,
      display_message: 'Something went wrong. Please try again.'
    };
  }

  function whenBody(fn) {
    if (document.body) {
      fn();
    } else {
      document.addEventListener('DOMContentLoaded', fn, { once: true });
    }
  }

  function create(config) {
    if (!config || typeof config.token !== 'string' || !config.token) {
      throw new Error('Plaid.create: a link token (config.token) is required');
    }
    var onSuccess = callback(config.onSuccess);
    var onExit = callback(config.onExit);
    var onEvent = callback(config.onEvent);
    var onLoad = callback(config.onLoad);

    counter += 1;
    var iframe = document.createElement('iframe');
    iframe.id = 'plaid-link-iframe-' + counter;
    iframe.title = 'Plaid Link';
    iframe.name = iframe.id;
    iframe.src = LINK_ORIGIN + '/link/frame?token=' + encodeURIComponent(config.token) +
      '&origin=' + encodeURIComponent(window.location.origin);
    var style = iframe.style;
    style.position = 'fixed';
    style.top = '0';
    style.left = '0';
    style.width = '100%';
    style.height = '100%';
    style.border = '0';
    style.margin = '0';
    style.padding = '0';
    style.zIndex = '2147483647';
    style.display = 'none';
    style.colorScheme = 'normal';
    style.background = 'transparent';

    var ready = false;
    var isOpen = false;
    var openPending = false;
    var destroyed = false;
    var loadTimer = null;
    var previousFocus = null;

    function send(message) {
      if (iframe.contentWindow) {
        message.source = SOURCE;
        iframe.contentWindow.postMessage(message, LINK_ORIGIN);
      }
    }

    function hide() {
      isOpen = false;
      openPending = false;
      style.display = 'none';
      if (loadTimer) {
        clearTimeout(loadTimer);
        loadTimer = null;
      }
      if (previousFocus && typeof previousFocus.focus === 'function') {
        previousFocus.focus();
      }
      previousFocus = null;
    }

    function onMessage(event) {
      if (destroyed || event.origin !== LINK_ORIGIN || event.source !== iframe.contentWindow) {
        return;
      }
      var data = event.data;
      if (!data || typeof data !== 'object' || data.source !== SOURCE) {
        return;
      }
      switch (data.action) {
        case 'ready':
          ready = true;
          onLoad();
          if (openPending) {
            openPending = false;
            send({ action: 'open' });
          }
          break;
        case 'opened':
          if (loadTimer) {
            clearTimeout(loadTimer);
            loadTimer = null;
          }
          iframe.focus();
          break;
        case 'event':
          onEvent(data.eventName, data.metadata || {});
          break;
        case 'exit':
          hide();
          onExit(data.error || null, data.metadata || {});
          break;
        case 'success':
          hide();
          onSuccess(data.public_token, data.metadata || {});
          break;
        default:
          break;
      }
    }

    window.addEventListener('message', onMessage);
    whenBody(function () {
      if (!destroyed) {
        document.body.appendChild(iframe);
      }
    });

    return {
      open: function () {
        if (destroyed || isOpen) {
          return;
        }
        isOpen = true;
        previousFocus = document.activeElement;
        style.display = 'block';
        loadTimer = setTimeout(function () {
          if (isOpen) {
            hide();
            onExit(loadError(), { status: null, institution: null, link_session_id: null, request_id: null });
          }
        }, LOAD_TIMEOUT_MS);
        if (ready) {
          send({ action: 'open' });
        } else {
          openPending = true;
        }
      },
      exit: function () {
        if (!destroyed && isOpen) {
          if (ready) {
            send({ action: 'exit' });
          } else {
            hide();
            onExit(null, { status: null, institution: null, link_session_id: null, request_id: null });
          }
        }
      },
      destroy: function () {
        destroyed = true;
        window.removeEventListener('message', onMessage);
        if (loadTimer) {
          clearTimeout(loadTimer);
        }
        if (iframe.parentNode) {
          iframe.parentNode.removeChild(iframe);
        }
      },
      submit: noop
    };
  }

  window.Plaid = { create: create, version: 'emulator', __emulator: true };
})();

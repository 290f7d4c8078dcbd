// Passkeys (W3C WebAuthn Level 3) on the login, step-up and account pages. Loaded as a file:
// the Content-Security-Policy (default-src 'self') allows no inline script. Each
// [data-passkeys] element carries its endpoints and CSRF token in data-* attributes; buttons
// name what they do in data-passkey-action. The server does every check; this only carries
// bytes between navigator.credentials and the JSON endpoints.
(function () {
  "use strict";
  if (window.oidcPasskeys || !window.PublicKeyCredential || !navigator.credentials) return;
  window.oidcPasskeys = true;

  // §5.10 base64url without padding, for browsers without the L3 JSON helpers.
  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    b64 += "===".slice((b64.length + 3) % 4);
    return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); }).buffer;
  }
  function toText(buffer) {
    var s = "";
    new Uint8Array(buffer).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, { id: toBytes(d.id) }); });
  }
  function creationOptions(json) {  // §5.1.9 parseCreationOptionsFromJSON
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    return Object.assign({}, json, { challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials) });
  }
  function requestOptions(json) {  // §5.1.10 parseRequestOptionsFromJSON
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    return Object.assign({}, json, { challenge: toBytes(json.challenge),
      allowCredentials: descriptors(json.allowCredentials) });
  }
  function credentialJSON(c) {  // §5.1.8 toJSON()
    if (typeof c.toJSON === "function") return c.toJSON();
    var r = c.response, response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return { id: c.id, rawId: toText(c.rawId), type: c.type, response: response,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      clientExtensionResults: c.getClientExtensionResults() };
  }

  function call(box, url, body, method) {
    return fetch(url, { method: method || "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": box.dataset.csrf },
      body: JSON.stringify(body || {}) })
      .then(function (r) { return r.json().catch(function () { return {}; })
        .then(function (data) { return { ok: r.ok, status: r.status, data: data }; }); });
  }
  function say(box, text, isError) {
    var status = box.querySelector("[data-passkey-status]");
    status.textContent = text;
    status.className = isError ? "error" : "muted";
  }
  function failed(box, result) {
    if (result.status === 403 && result.data && result.data.confirm_url) {
      window.location.assign(result.data.confirm_url);  // confirm it's you, then add it
      return Promise.reject(result);
    }
    say(box, (result.data && result.data.error_description) || "Something went wrong. Try again.", true);
    return Promise.reject(result);
  }
  // The first second factor brings recovery codes: shown once, here, until the person goes on.
  function showCodes(box, codes, then) {
    var section = document.createElement("section");
    section.id = "recovery-codes-once";
    var heading = document.createElement("h2");
    heading.textContent = "Save your recovery codes";
    var note = document.createElement("p");
    note.textContent = "If you lose your passkey, each of these codes lets you sign in once. " +
      "Write them down or store them in a password manager now: they are shown only this time.";
    var list = document.createElement("ul");
    list.className = "codes";
    list.id = "recovery-codes";
    codes.forEach(function (code) {
      var item = document.createElement("li"), text = document.createElement("code");
      text.textContent = code;
      item.appendChild(text);
      list.appendChild(item);
    });
    var done = document.createElement("button");
    done.type = "button";
    done.textContent = "I have saved them";
    done.addEventListener("click", then || function () { window.location.reload(); });
    section.append(heading, note, list, done);
    box.replaceChildren(section);
  }
  function ok(box) { return function (result) { return result.ok ? result.data : failed(box, result); }; }

  // A ceremony: options from the server, the authenticator, the answer back to the server.
  function ceremony(box, optionsUrl, verifyUrl, create, extra, optionsBody) {
    return call(box, optionsUrl, optionsBody || {}).then(ok(box)).then(function (options) {
      var request = create ? navigator.credentials.create({ publicKey: creationOptions(options) })
        : navigator.credentials.get({ publicKey: requestOptions(options) });
      return request.catch(function (error) {
        say(box, error.name === "NotAllowedError" ? "Cancelled, or no passkey was chosen. Try again."
          : "Your browser could not use a passkey: " + error.message, true);
        return Promise.reject(error);
      });
    }).then(function (credential) {
      return call(box, verifyUrl, Object.assign({ credential: credentialJSON(credential) }, extra));
    }).then(ok(box));
  }

  var actions = {
    login: function (box) {
      // The options call names the pending request too: its CSRF token is that request's.
      return ceremony(box, box.dataset.loginOptions, box.dataset.login, false,
        { p: box.dataset.p, next: box.dataset.next }, { p: box.dataset.p })
        .then(function (data) { window.location.assign(data.next); });
    },
    verify: function (box) {
      return ceremony(box, box.dataset.verifyOptions, box.dataset.verify, false, { p: box.dataset.p },
        { p: box.dataset.p, next: box.dataset.next })
        .then(function (data) {
          if (box.dataset.after === "reload") window.location.reload(); else window.location.assign(data.next);
        });
    },
    register: function (box) {
      var name = box.querySelector("[data-passkey-new-name]").value;
      return ceremony(box, box.dataset.registerOptions, box.dataset.register, true, { name: name })
        .then(function (data) {
          if (data.recovery_codes && data.recovery_codes.length) showCodes(box, data.recovery_codes);
          else window.location.reload();
        });
    },
    // The enrolment page of an authorization request: add a passkey, then prove it, which
    // raises the session's level, and go on with the request.
    enroll: function (box) {
      var name = box.querySelector("[data-passkey-new-name]").value;
      var proveAndGoOn = function () {
        return ceremony(box, box.dataset.verifyOptions, box.dataset.verify, false, { p: box.dataset.p },
          { p: box.dataset.p })
          .then(function (data) { window.location.assign(data.next); });
      };
      return ceremony(box, box.dataset.registerOptions, box.dataset.register, true, { name: name })
        .then(function (data) {
          say(box, "Passkey added. Now use it once to continue.", false);
          if (data.recovery_codes && data.recovery_codes.length) {
            showCodes(box, data.recovery_codes, function () { proveAndGoOn().catch(function () {}); });
            return null;
          }
          return proveAndGoOn();
        });
    },
    rename: function (box, item) {
      var name = item.querySelector("input").value;
      return call(box, item.dataset.url, { name: name }, "PATCH").then(ok(box))
        .then(function (data) {
          item.querySelector("[data-passkey-name]").textContent = data.passkey.name;
          say(box, "Renamed.", false);
        });
    },
    remove: function (box, item) {
      var name = item.querySelector("[data-passkey-name]").textContent;
      if (!window.confirm("Remove the passkey \u201c" + name + "\u201d?")) return Promise.resolve();
      var remove = function () { return call(box, item.dataset.url, {}, "DELETE"); };
      return remove().then(function (result) {
        if (result.status !== 403) return result;
        // Removing needs a recent sign-in at the passkey's level: prove a passkey, then retry.
        say(box, result.data.error_description, false);
        return ceremony(box, box.dataset.verifyOptions, box.dataset.verify, false, {},
          { level: result.data.level }).then(remove);
      }).then(ok(box)).then(function () { window.location.reload(); });
    },
  };

  document.querySelectorAll("[data-passkeys]").forEach(function (box) {
    box.hidden = false;
    box.querySelectorAll("[data-needs-js]").forEach(function (el) { el.hidden = false; });
    box.addEventListener("click", function (event) {
      var button = event.target.closest("[data-passkey-action]");
      if (!button || button.disabled) return;
      button.disabled = true;
      actions[button.dataset.passkeyAction](box, button.closest("[data-passkey-item]"))
        .catch(function () { /* already shown in the status line */ })
        .then(function () { button.disabled = false; });
    });
  });
})();

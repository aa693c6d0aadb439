// login.js: the sign-in form. POST /api/login sets the session cookie; then
// the browser goes back to `next` (a same-origin path only) or to the role's
// home page.

import { api, ApiError, homeFor } from './common.js';

const form = document.getElementById('login-form');
const button = document.getElementById('login-button');
const errorBox = document.getElementById('login-error');

// safeNext returns `next` only when it is a path on this origin: it must
// start with "/" but not "//" (a protocol-relative URL to another host) nor
// "/\" (which browsers treat the same way).
function safeNext() {
  const next = new URLSearchParams(location.search).get('next') || '';
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '';
  if (next === '/login' || next.startsWith('/login?')) return '';
  return next;
}

function destination(user) {
  return safeNext() || homeFor(user && user.role);
}

function showLoginError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function minutesText(seconds) {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  errorBox.hidden = true;
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    showLoginError('Enter your username and password.');
    (username ? form.elements.password : form.elements.username).focus();
    return;
  }
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    const res = await fetch('/api/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (res.status === 429) {
      const retry = parseInt(res.headers.get('Retry-After') || '', 10);
      showLoginError(Number.isFinite(retry)
        ? `Too many attempts, try again in ${minutesText(retry)}.`
        : 'Too many attempts, try again later.');
      return;
    }
    if (!res.ok) {
      let message = '';
      try {
        const body = await res.json();
        message = body && body.error && body.error.message;
      } catch (_) { /* not JSON */ }
      if (!message) message = res.status === 401 ? 'Invalid username or password.' : `Sign-in failed (HTTP ${res.status}).`;
      showLoginError(message);
      form.elements.password.value = '';
      form.elements.password.focus();
      return;
    }
    const session = await res.json();
    location.assign(destination(session.user));
  } catch (_) {
    showLoginError('The callrec server cannot be reached. Check the connection and try again.');
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
});

// Already signed in (e.g. the login page was bookmarked): go straight on.
api('/api/session', { on401: 'throw' })
  .then((session) => { if (session && session.user) location.replace(destination(session.user)); })
  .catch((err) => {
    if (!(err instanceof ApiError) || err.status !== 401) {
      showLoginError(err.message);
    }
  });

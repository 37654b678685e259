// The hooksign dashboard. The API key, or the session a dashboard link
// opened, lives in this tab's sessionStorage only and goes out in the
// Authorization header of the API's own routes. A link's token arrives in
// the address's fragment (never sent to a server) and is taken out of the
// address before anything else happens.
// Every value from the API reaches the page as text (textContent, append),
// never as HTML.

const KEY_ITEM = 'hooksign.apiKey';
const ORG_ITEM = 'hooksign.org';
const SESSION_PREFIX = 'sgn_sess_';
const REFRESH_MS = 5000;
const SIGNATURE_CHOICES = [
  ['v1: HMAC-SHA256 with a shared secret', 'v1'],
  ['v1a: Ed25519 with a public key', 'v1a'],
];

const GRACE_CHOICES = [
  ['Now (the old secret stops at once)', 0],
  ['1 hour', 3600],
  ['24 hours', 86400],
  ['7 days', 604800],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');

/** Cleanups of the view on screen (its timers). */
let cleanups = [];
/** A secret to show once, on the view it belongs to: {view, label, value}. */
let oneTime = null;

// ---- DOM ---------------------------------------------------------------

/** An element: props are attributes, `text`, or `on<event>` handlers. */
function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') element.textContent = value;
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

let uniqueIds = 0;
function uniqueId(prefix) {
  uniqueIds += 1;
  return `${prefix}-${uniqueIds}`;
}

/** A time as the reader's local time, or a dash. */
function when(time) {
  if (!time) return '—';
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? String(time) : date.toLocaleString();
}

/** A table in a scrolling box (narrow screens), with a caption. */
function table(caption, headings, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'empty', text: empty });
  return h(
    'div',
    { class: 'scroll', role: 'region', 'aria-label': caption, tabindex: 0 },
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden', text: caption }),
      h('thead', {}, h('tr', {}, headings.map((heading) => h('th', { scope: 'col', text: heading })))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell) => h('td', {}, cell))))),
    ),
  );
}

// ---- The API -------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

/** Whether the tab is signed in through a dashboard link's session. */
function bySession() {
  return (apiKey() || '').startsWith(SESSION_PREFIX);
}

/** Calls the API with the tab's key; a problem document becomes an ApiError. */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${apiKey() || ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, {
      title: 'The service did not answer',
      detail: 'Check that it is running, then try again.',
    });
  }
  const text = await response.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = null;
  }
  if (!response.ok) {
    const problem = value && typeof value === 'object' ? value : { title: `HTTP ${response.status}` };
    throw new ApiError(response.status, problem);
  }
  return value;
}

function problemText(problem) {
  const title = problem.title || 'Something went wrong';
  return problem.detail ? `${title}: ${problem.detail}` : title;
}

// ---- Forms ---------------------------------------------------------------

/**
 * A labelled form. `fields`: {name, label, type, value, hint, options,
 * required, autocomplete}. `submit(values)` runs on submit; a problem it
 * throws is shown above the form, and each field error next to its field.
 */
function form({ fields, submitLabel, submit, className }) {
  const problem = h('div', { class: 'problem', role: 'alert', tabindex: -1, hidden: true });
  const controls = fields.map((field) => {
    const id = uniqueId(field.name);
    const hintId = field.hint ? `${id}-hint` : undefined;
    let control;
    if (field.choices) {
      const chosen = new Set(field.value || []);
      return h(
        'fieldset',
        { class: 'field choices' },
        h('legend', { text: field.label }),
        field.choices.map(([label, value]) => {
          const choiceId = uniqueId(field.name);
          return h(
            'span',
            { class: 'check' },
            h('input', { type: 'checkbox', id: choiceId, name: field.name, value, checked: chosen.has(value) }),
            h('label', { for: choiceId, text: label }),
          );
        }),
        field.hint ? h('small', { text: field.hint }) : null,
      );
    }
    if (field.type === 'textarea') {
      control = h('textarea', { id, name: field.name, rows: 6, spellcheck: 'false', 'aria-describedby': hintId });
      if (field.value !== undefined) control.value = field.value;
    } else if (field.options) {
      control = h(
        'select',
        { id, name: field.name },
        field.options.map(([label, value]) =>
          h('option', { value, selected: String(value) === String(field.value) }, label),
        ),
      );
    } else {
      control = h('input', {
        id,
        name: field.name,
        type: field.type || 'text',
        required: field.required,
        autocomplete: field.autocomplete || 'off',
        spellcheck: 'false',
        'aria-describedby': hintId,
      });
      if (field.value !== undefined) control.value = field.value;
    }
    return h(
      'div',
      { class: 'field' },
      h('label', { for: id, text: field.label }),
      control,
      field.hint ? h('small', { id: hintId, text: field.hint }) : null,
    );
  });
  const button = h('button', { type: 'submit', text: submitLabel });
  const element = h('form', { class: className || 'stacked', novalidate: true }, problem, controls, button);
  element.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearProblems(element);
    const data = new FormData(element);
    const values = {};
    for (const field of fields) values[field.name] = field.choices ? data.getAll(field.name) : (data.get(field.name) ?? '');
    button.disabled = true;
    try {
      await submit(values, element);
    } catch (error) {
      if (!handleSignedOut(error)) showProblem(element, error);
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

function clearProblems(element) {
  const box = element.querySelector('.problem');
  box.hidden = true;
  box.replaceChildren();
  for (const note of element.querySelectorAll('.field-error')) note.remove();
  for (const control of element.querySelectorAll('[aria-invalid]')) {
    control.removeAttribute('aria-invalid');
    const hint = control.getAttribute('aria-describedby');
    const kept = (hint || '').split(' ').filter((id) => id && !id.endsWith('-error'));
    if (kept.length) control.setAttribute('aria-describedby', kept.join(' '));
    else control.removeAttribute('aria-describedby');
  }
}

/** A problem above a form, its field errors next to their fields. */
function showProblem(element, error) {
  const problem = error instanceof ApiError ? error.problem : { title: String(error.message || error) };
  const box = element.querySelector('.problem');
  box.append(h('p', { text: problemText(problem) }));
  const unplaced = [];
  for (const fieldError of problem.errors || []) {
    const name = String(fieldError.path).split(/[.[]/)[0];
    const control = element.elements.namedItem(name);
    if (control instanceof HTMLElement) {
      const note = h('span', { class: 'field-error', id: `${control.id}-error`, text: fieldError.message });
      control.after(note);
      control.setAttribute('aria-invalid', 'true');
      const described = control.getAttribute('aria-describedby');
      control.setAttribute('aria-describedby', described ? `${described} ${note.id}` : note.id);
    } else {
      unplaced.push(`${fieldError.path} ${fieldError.message}`);
    }
  }
  if (unplaced.length) box.append(h('ul', {}, unplaced.map((text) => h('li', { text }))));
  box.hidden = false;
  box.focus();
}

/** A button that asks again inline before `action`. */
function confirmButton(label, question, action) {
  const area = h('div', { class: 'confirm' });
  const problem = h('div', { class: 'problem', role: 'alert', hidden: true });
  const start = h('button', { type: 'button', class: 'danger', text: label });
  start.addEventListener('click', () => {
    const yes = h('button', { type: 'button', class: 'danger', text: `Yes, ${label.toLowerCase()}` });
    const no = h('button', { type: 'button', class: 'quiet', text: 'Cancel' });
    no.addEventListener('click', () => {
      area.replaceChildren(start);
      start.focus();
    });
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      try {
        await action();
      } catch (error) {
        if (handleSignedOut(error)) return;
        problem.replaceChildren(h('p', { text: problemText(error.problem || { title: String(error) }) }));
        problem.hidden = false;
        yes.disabled = false;
      }
    });
    area.replaceChildren(h('p', { text: question }), problem, h('div', { class: 'actions' }, yes, no));
    no.focus();
  });
  area.append(start);
  return area;
}

/** A secret shown once, with a copy button and a plain warning. */
function secretPanel(label, value) {
  const code = h('code', { class: 'secret', tabindex: 0 }, value);
  const status = h('span', { role: 'status', class: 'copied' });
  const copy = h('button', { type: 'button', text: 'Copy' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(value);
      status.textContent = 'Copied.';
    } catch {
      getSelection().selectAllChildren(code);
      status.textContent = 'Selected: copy it with your keyboard.';
    }
  });
  return h(
    'section',
    { class: 'one-time', 'aria-labelledby': 'one-time-title' },
    h('h2', { id: 'one-time-title', text: label }),
    h('p', {
      class: 'warning',
      text: 'Copy it now: it is shown this once and never again. Anyone who has it can act as you, so keep it out of chats, tickets and code.',
    }),
    h('div', { class: 'actions' }, code, copy, status),
  );
}

/** The one-time secret of this view, if any; it is then gone. */
function takeOneTime(view) {
  if (!oneTime || oneTime.view !== view) return null;
  const shown = secretPanel(oneTime.label, oneTime.value);
  oneTime = null;
  return shown;
}

// ---- Signing in and out ---------------------------------------------------

function signOut(reason) {
  sessionStorage.removeItem(KEY_ITEM);
  sessionStorage.removeItem(ORG_ITEM);
  oneTime = null;
  if (location.hash !== '#/') history.replaceState(null, '', '#/');
  render(reason);
}

/** A refused key (revoked meanwhile) ends the session. */
function handleSignedOut(error) {
  if (error instanceof ApiError && error.status === 401 && apiKey()) {
    signOut(`Signed out: ${problemText(error.problem)}`);
    return true;
  }
  return false;
}

function signInView(reason) {
  const signIn = form({
    fields: [
      {
        name: 'apiKey',
        label: 'API key',
        type: 'password',
        required: true,
        hint: 'Kept in this tab only, and forgotten when you sign out or close it.',
      },
    ],
    submitLabel: 'Sign in',
    submit: async ({ apiKey: key }) => {
      sessionStorage.setItem(KEY_ITEM, key.trim());
      try {
        await api('GET', '/webhooks?limit=1');
      } catch (error) {
        sessionStorage.removeItem(KEY_ITEM);
        throw error;
      }
      go('#/endpoints');
    },
  });
  return [
    h('h1', { text: 'Sign in' }),
    reason ? h('p', { class: 'problem', role: 'alert', text: reason }) : null,
    h('p', { text: 'Paste an API key of your organisation (sgn_live_…), or open a dashboard link.' }),
    signIn,
  ];
}

// ---- Endpoints -------------------------------------------------------------

function eventTypesOf(text) {
  return String(text || '')
    .split(',')
    .map((type) => type.trim())
    .filter(Boolean);
}

/** The service's own event types, which an endpoint takes by listing them. */
const OPERATIONAL_TYPES = [
  ['hooksign.endpoint.disabled: an endpoint was paused by its failures', 'hooksign.endpoint.disabled'],
  ['hooksign.message.attempt.exhausted: a delivery failed its last attempt', 'hooksign.message.attempt.exhausted'],
  ['hooksign.message.attempt.recovered: a delivery succeeded after failing', 'hooksign.message.attempt.recovered'],
];

/**
 * The endpoint form's event-type field: with a catalogue, its types and the
 * operational ones to choose from; without one, names to type.
 */
async function eventTypesField(current = []) {
  const catalogue = (await api('GET', '/event-types')).data;
  if (catalogue.length === 0) {
    return {
      name: 'eventTypes',
      label: 'Event types',
      value: current.join(', '),
      hint: 'Comma-separated; empty for every type (operational ones, hooksign.*, only by name).',
    };
  }
  const choices = catalogue.map((type) => [`${type.name}${type.deprecated ? ' (deprecated)' : ''}`, type.name]);
  return {
    name: 'eventTypes',
    label: 'Event types',
    choices: [...choices, ...OPERATIONAL_TYPES],
    value: current,
    hint: 'None chosen: every type of the catalogue.',
  };
}

/** The chosen event types, from either kind of field. */
function chosenTypes(value) {
  return Array.isArray(value) ? value : eventTypesOf(value);
}

/** A rate limit field's value: a number, or null for none. */
function rateOf(text) {
  return String(text || '').trim() === '' ? null : Number(text);
}

function endpointStatus(endpoint) {
  if (!endpoint.paused) return h('span', { class: 'badge ok', text: 'Active' });
  const reason = endpoint.pausedReason ? `: ${endpoint.pausedReason}` : '';
  return h(
    'span',
    {},
    h('span', { class: 'badge paused', text: 'Paused' }),
    ` since ${when(endpoint.pausedAt)}${reason}`,
  );
}

async function endpointsView() {
  const list = h('div', {}, h('p', { text: 'Loading…' }));
  let cursor = null;
  const rows = [];
  const more = h('button', { type: 'button', class: 'quiet', text: 'Show more', hidden: true });
  async function load() {
    const page = await api('GET', `/webhooks?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const endpoint of page.data) {
      rows.push([
        h('a', { href: `#/endpoints/${endpoint.id}`, text: endpoint.url }),
        endpointStatus(endpoint),
        String(endpoint.consecutiveFailures),
        endpoint.eventTypes.length ? endpoint.eventTypes.join(', ') : 'all',
        when(endpoint.lastSuccessAt),
      ]);
    }
    cursor = page.nextCursor;
    more.hidden = !cursor;
    list.replaceChildren(
      table('Endpoints', ['URL', 'Status', 'Failures in a row', 'Event types', 'Last success'], rows, 'No endpoints yet.'),
    );
  }
  more.addEventListener('click', () => load().catch(failed));
  await load();
  const create = form({
    fields: [
      { name: 'url', label: 'URL', type: 'url', required: true, hint: 'Where deliveries are POSTed (http or https).' },
      { name: 'description', label: 'Description' },
      await eventTypesField(),
      { name: 'rateLimitPerSecond', label: 'Rate limit (sends a second)', type: 'number', hint: 'Empty for none.' },
      {
        name: 'signature',
        label: 'Signature',
        options: SIGNATURE_CHOICES,
        value: 'v1',
        hint: 'v1a: receivers verify with a public key, so their copy cannot sign.',
      },
    ],
    submitLabel: 'Create endpoint',
    submit: async (values) => {
      const created = await api('POST', '/webhooks', {
        url: values.url,
        description: values.description,
        eventTypes: chosenTypes(values.eventTypes),
        rateLimitPerSecond: rateOf(values.rateLimitPerSecond),
        signature: values.signature,
      });
      const view = `endpoint/${created.endpoint.id}`;
      // A v1a endpoint's public key is not secret: the page always shows it.
      if (created.signingSecret) oneTime = { view, label: 'Signing secret', value: created.signingSecret };
      location.hash = `#/endpoints/${created.endpoint.id}`;
    },
  });
  return [
    h('h1', { text: 'Endpoints' }),
    list,
    more,
    h('section', { 'aria-labelledby': 'new-endpoint' }, h('h2', { id: 'new-endpoint', text: 'New endpoint' }), create),
  ];
}

function attemptRows(attempts) {
  return attempts.map((attempt) => [
    when(attempt.attemptedAt),
    h('span', {
      class: `badge ${attempt.succeeded ? 'ok' : 'failed'}`,
      text: `${attempt.succeeded ? 'Succeeded' : 'Failed'}${attempt.responseStatus ? ` (${attempt.responseStatus})` : ''}`,
    }),
    `${attempt.durationMs} ms`,
    attempt.test
      ? 'test send'
      : h('a', { href: `#/messages/${encodeURIComponent(attempt.messageId)}`, text: `${attempt.eventType} #${attempt.attemptNumber}` }),
    attempt.error || '—',
  ]);
}

async function endpointView(id) {
  const view = `endpoint/${id}`;
  const endpoint = await api('GET', `/webhooks/${encodeURIComponent(id)}`);
  const shown = takeOneTime(view);
  const rerender = () => render();
  const keyWord = endpoint.signature === 'v1a' ? 'key' : 'secret';

  const pause = h('button', { type: 'button', text: endpoint.paused ? 'Resume' : 'Pause' });
  pause.addEventListener('click', async () => {
    pause.disabled = true;
    try {
      await api('PATCH', `/webhooks/${id}`, { paused: !endpoint.paused });
      rerender();
    } catch (error) {
      failed(error);
    }
  });

  const testResult = h('div', { class: 'test-result', role: 'status', 'aria-live': 'polite' });
  const test = h('button', { type: 'button', text: 'Send a test' });
  test.addEventListener('click', async () => {
    test.disabled = true;
    testResult.replaceChildren(h('p', { text: 'Sending…' }));
    try {
      const sent = await api('POST', `/webhooks/${id}/test`);
      testResult.replaceChildren(...testAnswer(sent));
      await loadAttempts();
    } catch (error) {
      if (!handleSignedOut(error)) testResult.replaceChildren(h('p', { class: 'problem', text: problemText(error.problem || {}) }));
    } finally {
      test.disabled = false;
    }
  });

  const rotate = form({
    className: 'inline',
    fields: [
      {
        name: 'graceSeconds',
        label: `The old ${keyWord} stays valid for`,
        options: GRACE_CHOICES,
        value: 86400,
      },
    ],
    submitLabel: `Rotate ${keyWord}`,
    submit: async ({ graceSeconds }) => {
      const rotated = await api('POST', `/webhooks/${id}/rotate`, { graceSeconds: Number(graceSeconds) });
      if (rotated.signingSecret) oneTime = { view, label: 'New signing secret', value: rotated.signingSecret };
      rerender();
    },
  });

  const edit = form({
    fields: [
      { name: 'url', label: 'URL', type: 'url', value: endpoint.url, required: true },
      { name: 'description', label: 'Description', value: endpoint.description },
      await eventTypesField(endpoint.eventTypes),
      {
        name: 'rateLimitPerSecond',
        label: 'Rate limit (sends a second)',
        type: 'number',
        value: endpoint.rateLimitPerSecond ?? '',
        hint: 'Empty for none. Deliveries over it wait; they do not fail.',
      },
    ],
    submitLabel: 'Save changes',
    submit: async (values) => {
      await api('PATCH', `/webhooks/${id}`, {
        url: values.url,
        description: values.description,
        eventTypes: chosenTypes(values.eventTypes),
        rateLimitPerSecond: rateOf(values.rateLimitPerSecond),
      });
      rerender();
    },
  });

  const headerRows = [
    ...Object.entries(endpoint.headers).map(([name, value]) => [h('code', { text: name }), value, 'shown', name]),
    ...endpoint.sensitiveHeaders.map((name) => [h('code', { text: name }), '••••••', 'sensitive: sealed, never shown', name]),
  ].map(([name, value, kind, key]) => [
    name,
    value,
    kind,
    confirmButton('Remove', `Remove the header ${key}?`, async () => {
      await api('PATCH', `/webhooks/${id}`, { headers: { [key]: null } });
      rerender();
    }),
  ]);
  const setHeader = form({
    className: 'inline',
    fields: [
      { name: 'name', label: 'Header name', required: true },
      { name: 'value', label: 'Value', type: 'password', required: true },
      { name: 'kind', label: 'Kind', options: [['Shown', 'shown'], ['Sensitive (sealed, never shown)', 'sensitive']], value: 'shown' },
    ],
    submitLabel: 'Set header',
    submit: async ({ name, value, kind }) => {
      const field = kind === 'sensitive' ? 'sensitiveHeaders' : 'headers';
      await api('PATCH', `/webhooks/${id}`, { [field]: { [name]: value } });
      rerender();
    },
  });

  const recovered = h('p', { role: 'status' });
  const recover = form({
    className: 'inline',
    fields: [{ name: 'since', label: 'Failed since', type: 'datetime-local', required: true }],
    submitLabel: 'Recover',
    submit: async ({ since }) => {
      const answer = await api('POST', `/webhooks/${id}/recover`, { since: new Date(since).toISOString() });
      recovered.textContent = `${answer.count} failed deliveries will be sent again, oldest first.`;
    },
  });

  const attempts = h('div', {}, h('p', { text: 'Loading…' }));
  async function loadAttempts() {
    const page = await api('GET', `/webhooks/${id}/attempts?limit=50`);
    attempts.replaceChildren(
      table('Attempts', ['Time', 'Result', 'Duration', 'Message', 'Error'], attemptRows(page.data), 'No attempts yet.'),
    );
  }
  const refresh = h('button', { type: 'button', class: 'quiet', text: 'Refresh' });
  refresh.addEventListener('click', () => loadAttempts().catch(failed));
  const autoId = uniqueId('auto');
  const auto = h('input', { type: 'checkbox', id: autoId });
  let timer = null;
  auto.addEventListener('change', () => {
    clearInterval(timer);
    timer = auto.checked ? setInterval(() => loadAttempts().catch(failed), REFRESH_MS) : null;
  });
  cleanups.push(() => clearInterval(timer));
  await loadAttempts();

  return [
    h('p', { class: 'crumbs' }, h('a', { href: '#/endpoints', text: '← Endpoints' })),
    h('h1', { class: 'url', text: endpoint.url }),
    endpoint.description ? h('p', { text: endpoint.description }) : null,
    shown,
    h(
      'dl',
      { class: 'facts' },
      h('dt', { text: 'Status' }),
      h('dd', {}, endpointStatus(endpoint)),
      h('dt', { text: 'Failures in a row' }),
      h('dd', { text: String(endpoint.consecutiveFailures) }),
      h('dt', { text: 'Event types' }),
      h('dd', { text: endpoint.eventTypes.length ? endpoint.eventTypes.join(', ') : 'all' }),
      h('dt', { text: 'Last success' }),
      h('dd', { text: when(endpoint.lastSuccessAt) }),
      h('dt', { text: 'Last failure' }),
      h('dd', { text: when(endpoint.lastFailureAt) }),
      h('dt', { text: 'Rate limit' }),
      h('dd', { text: endpoint.rateLimitPerSecond ? `${endpoint.rateLimitPerSecond} sends a second` : 'none' }),
      h('dt', { text: 'Signature' }),
      h('dd', { text: endpoint.signature === 'v1a' ? 'v1a (Ed25519)' : 'v1 (HMAC-SHA256)' }),
      endpoint.signingPublicKey ? h('dt', { text: 'Public key' }) : null,
      endpoint.signingPublicKey ? h('dd', {}, h('code', { class: 'public-key', text: endpoint.signingPublicKey })) : null,
      h('dt', { text: 'Id' }),
      h('dd', {}, h('code', { text: endpoint.id })),
    ),
    h('div', { class: 'actions' }, pause, test),
    testResult,
    h(
      'section',
      { 'aria-labelledby': 'attempts-title' },
      h('h2', { id: 'attempts-title', text: 'Attempts' }),
      h(
        'div',
        { class: 'actions' },
        refresh,
        h('span', { class: 'check' }, auto, h('label', { for: autoId, text: `Refresh every ${REFRESH_MS / 1000} seconds` })),
      ),
      attempts,
    ),
    h(
      'section',
      { 'aria-labelledby': 'rotate-title' },
      h('h2', { id: 'rotate-title', text: endpoint.signature === 'v1a' ? 'Signing key' : 'Signing secret' }),
      rotate,
    ),
    h('section', { 'aria-labelledby': 'edit-title' }, h('h2', { id: 'edit-title', text: 'Edit' }), edit),
    h(
      'section',
      { 'aria-labelledby': 'headers-title' },
      h('h2', { id: 'headers-title', text: 'Custom headers' }),
      table('Custom headers', ['Name', 'Value', 'Kind', ''], headerRows, 'No custom headers.'),
      setHeader,
    ),
    h(
      'section',
      { 'aria-labelledby': 'recover-title' },
      h('h2', { id: 'recover-title', text: 'Recover after an outage' }),
      h('p', { text: 'Sends again, oldest first, every delivery to this endpoint that failed since then.' }),
      recover,
      recovered,
    ),
    h(
      'section',
      { 'aria-labelledby': 'delete-title' },
      h('h2', { id: 'delete-title', text: 'Delete' }),
      confirmButton('Delete endpoint', 'Delete this endpoint, its secrets and its attempts? This cannot be undone.', async () => {
        await api('DELETE', `/webhooks/${id}`);
        location.hash = '#/endpoints';
      }),
    ),
  ];
}

/** What the receiver answered a test send. */
function testAnswer(sent) {
  const { attempt, response } = sent;
  if (!response) {
    return [h('h3', { text: 'No answer' }), h('p', { text: attempt.error || 'The receiver could not be reached.' })];
  }
  const headers = Object.entries(response.headers || {}).map(([name, value]) => [name, String(value)]);
  return [
    h('h3', { text: `The receiver answered ${response.status}` }),
    table('Response headers', ['Header', 'Value'], headers, 'No headers.'),
    h('pre', { class: 'body', tabindex: 0, 'aria-label': 'Response body' }, response.body || '(empty body)'),
  ];
}

// ---- Messages ------------------------------------------------------------

async function messagesView() {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const type = params.get('type') || '';
  let cursor = null;
  const rows = [];
  const list = h('div', {});
  const more = h('button', { type: 'button', class: 'quiet', text: 'Show more', hidden: true });
  async function load() {
    const query = new URLSearchParams({ limit: '50' });
    if (type) query.set('type', type);
    if (cursor) query.set('cursor', cursor);
    const page = await api('GET', `/messages?${query}`);
    for (const message of page.data) {
      rows.push([
        h('a', { href: `#/messages/${encodeURIComponent(message.id)}` }, h('code', { text: message.id })),
        message.type,
        when(message.createdAt),
      ]);
    }
    cursor = page.nextCursor;
    more.hidden = !cursor;
    list.replaceChildren(table('Messages', ['Id', 'Type', 'Created'], rows, 'No messages.'));
  }
  more.addEventListener('click', () => load().catch(failed));
  await load();
  const filter = form({
    className: 'inline',
    fields: [{ name: 'type', label: 'Event type', value: type }],
    submitLabel: 'Filter',
    submit: async (values) => {
      go(values.type ? `#/messages?type=${encodeURIComponent(values.type)}` : '#/messages');
    },
  });
  return [h('h1', { text: 'Messages' }), filter, list, more];
}

async function messageView(id) {
  const message = await api('GET', `/messages/${encodeURIComponent(id)}`);
  const rows = message.deliveries.map((delivery) => {
    const resend = h('button', { type: 'button', class: 'quiet', text: 'Resend' });
    const status = h('span', { role: 'status' });
    resend.addEventListener('click', async () => {
      resend.disabled = true;
      try {
        await api('POST', `/messages/${encodeURIComponent(id)}/resend`, { endpointId: delivery.endpointId });
        status.textContent = 'Resent.';
        setTimeout(() => render(), 1000);
      } catch (error) {
        if (!handleSignedOut(error)) status.textContent = problemText(error.problem || {});
        resend.disabled = false;
      }
    });
    return [
      h('a', { href: `#/endpoints/${delivery.endpointId}` }, h('code', { text: delivery.endpointId })),
      h('span', { class: `badge ${delivery.status}`, text: delivery.status }),
      String(delivery.attempts),
      when(delivery.lastAttemptAt),
      when(delivery.nextAttemptAt),
      delivery.lastError || '—',
      h('span', {}, resend, ' ', status),
    ];
  });
  return [
    h('p', { class: 'crumbs' }, h('a', { href: '#/messages', text: '← Messages' })),
    h('h1', {}, h('code', { text: message.id })),
    h(
      'dl',
      { class: 'facts' },
      h('dt', { text: 'Type' }),
      h('dd', { text: message.type }),
      h('dt', { text: 'Created' }),
      h('dd', { text: when(message.createdAt) }),
    ),
    h(
      'section',
      { 'aria-labelledby': 'deliveries-title' },
      h('h2', { id: 'deliveries-title', text: 'Deliveries' }),
      table(
        'Deliveries',
        ['Endpoint', 'Status', 'Attempts', 'Last attempt', 'Next attempt', 'Last error', ''],
        rows,
        'No endpoint was subscribed.',
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'data-title' },
      h('h2', { id: 'data-title', text: 'Data' }),
      h('pre', { class: 'body', tabindex: 0 }, JSON.stringify(message.data, null, 2)),
    ),
  ];
}

// ---- API keys ------------------------------------------------------------

async function eventTypesView() {
  const catalogue = (await api('GET', '/event-types')).data;
  const rows = catalogue.map((type) => [
    h('code', { text: type.name }),
    type.description || '—',
    type.deprecated ? 'deprecated' : 'current',
    type.schema ? h('pre', { class: 'body', text: JSON.stringify(type.schema, null, 2) }) : 'none',
    confirmButton('Delete', `Delete the event type ${type.name}?`, async () => {
      await api('DELETE', `/event-types/${encodeURIComponent(type.name)}`);
      render();
    }),
  ]);
  const create = form({
    fields: [
      { name: 'name', label: 'Name', required: true, hint: 'Letters, digits and ._:- (invoice.paid).' },
      { name: 'description', label: 'Description' },
      { name: 'schema', label: 'JSON Schema of its data', type: 'textarea', hint: 'Optional; events whose data fails it are refused.' },
    ],
    submitLabel: 'Add event type',
    submit: async ({ name, description, schema }) => {
      let parsed = null;
      if (schema.trim()) {
        try {
          parsed = JSON.parse(schema);
        } catch {
          throw new ApiError(400, { title: 'The schema is not JSON', errors: [{ path: 'schema', message: 'is not JSON' }] });
        }
      }
      await api('POST', '/event-types', { name, description, schema: parsed });
      render();
    },
  });
  return [
    h('h1', { text: 'Event types' }),
    h('p', { text: 'Once the catalogue has a type, endpoints subscribe only to its types (and the operational ones, hooksign.*).' }),
    table('Event types', ['Name', 'Description', 'State', 'Schema', ''], rows, 'No event types: endpoints may subscribe to any.'),
    h('section', { 'aria-labelledby': 'new-type' }, h('h2', { id: 'new-type', text: 'New event type' }), create),
  ];
}

async function keysView() {
  const listed = await api('GET', '/api-keys');
  const shown = takeOneTime('api-keys');
  const rows = listed.data.map((key) => {
    let state;
    if (key.bootstrap) state = 'bootstrap (the api_keys variable)';
    else if (key.revokedAt) state = `revoked ${when(key.revokedAt)}`;
    else state = 'active';
    return [
      key.name,
      key.prefix ? h('code', { text: `${key.prefix}…` }) : '—',
      when(key.createdAt),
      when(key.lastUsedAt),
      state,
      key.bootstrap || key.revokedAt || bySession()
        ? ''
        : confirmButton('Revoke', `Revoke “${key.name}”? Requests with it are refused at once.`, async () => {
            await api('DELETE', `/api-keys/${encodeURIComponent(key.id)}`);
            render();
          }),
    ];
  });
  const create = form({
    className: 'inline',
    fields: [{ name: 'name', label: 'Name', required: true, hint: 'What or who uses it.' }],
    submitLabel: 'Create key',
    submit: async ({ name }) => {
      const minted = await api('POST', '/api-keys', { name });
      oneTime = { view: 'api-keys', label: `API key “${minted.apiKey.name}”`, value: minted.key };
      render();
    },
  });
  const minting = bySession()
    ? h('p', { class: 'note', text: 'Signed in through a dashboard link: API keys are minted and revoked with an API key.' })
    : h('section', { 'aria-labelledby': 'new-key' }, h('h2', { id: 'new-key', text: 'New key' }), create);
  return [
    h('h1', { text: 'API keys' }),
    shown,
    table('API keys', ['Name', 'Starts with', 'Created', 'Last used', 'State', ''], rows, 'No keys.'),
    minting,
  ];
}

// ---- Routing -------------------------------------------------------------

/** Shows the view of `hash`, even if it is the one on screen. */
function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function failed(error) {
  if (handleSignedOut(error)) return;
  main.replaceChildren(
    h('h1', { text: 'Could not load this page' }),
    h('p', { class: 'problem', role: 'alert', text: problemText(error.problem || { title: String(error) }) }),
    h('p', {}, h('a', { href: '#/endpoints', text: 'Back to the endpoints' })),
  );
}

/**
 * Puts a view's parts on screen. A view leaves a part out as `null` or
 * `false`; `replaceChildren` would write those as text.
 */
function show(parts) {
  main.replaceChildren(...parts.filter((part) => part !== null && part !== undefined && part !== false));
}

/** The view for the address's hash. */
function viewFor(hash) {
  const [path] = hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'endpoints' && parts[1]) return () => endpointView(parts[1]);
  if (parts[0] === 'messages' && parts[1]) return () => messageView(parts[1]);
  if (parts[0] === 'messages') return messagesView;
  if (parts[0] === 'api-keys') return keysView;
  if (parts[0] === 'event-types') return eventTypesView;
  return endpointsView;
}

let rendering = 0;
async function render(reason) {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  const signedIn = Boolean(apiKey());
  nav.hidden = !signedIn;
  const org = signedIn ? JSON.parse(sessionStorage.getItem(ORG_ITEM) || 'null') : null;
  orgName.hidden = !org;
  orgName.textContent = org ? org.name : '';
  if (!signedIn) {
    show(signInView(reason));
    main.querySelector('input')?.focus();
    return;
  }
  const ticket = ++rendering;
  for (const link of nav.querySelectorAll('a')) {
    const current = location.hash.startsWith(link.getAttribute('href'));
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  try {
    const content = await viewFor(location.hash)();
    // A later navigation won meanwhile.
    if (ticket !== rendering) return;
    show(content);
    main.focus({ preventScroll: true });
  } catch (error) {
    if (ticket === rendering) failed(error);
  }
}

/**
 * Opens the dashboard link in the address, if any: its token is taken out
 * of the address first, then exchanged once for a session. Resolves with
 * why it could not be opened, or nothing.
 */
async function openLink() {
  if (!location.hash.startsWith('#link=')) return undefined;
  const token = location.hash.slice('#link='.length);
  history.replaceState(null, '', `${location.pathname}#/endpoints`);
  sessionStorage.removeItem(KEY_ITEM);
  sessionStorage.removeItem(ORG_ITEM);
  let response;
  try {
    response = await fetch('/dashboard/sessions', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    return 'The service did not answer: open the link again.';
  }
  const value = await response.json().catch(() => null);
  if (!response.ok) return problemText(value || { title: `HTTP ${response.status}` });
  sessionStorage.setItem(KEY_ITEM, value.token);
  sessionStorage.setItem(ORG_ITEM, JSON.stringify({ id: value.org.id, name: value.org.name }));
  return undefined;
}

const orgName = document.getElementById('org-name');
document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', () => render());
openLink().then((reason) => render(reason));

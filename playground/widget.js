/*!
 * Companin chat widget — served at /widget.js. No framework, no dependencies.
 *
 *   <script src="https://YOUR-COMPANIN/widget.js"></script>
 *   <script>
 *     Companin.mount({
 *       // Your server mints widget tokens (POST /api/v1/widget/token with the OAuth app's
 *       // client id and secret, and the visitor_id it is given, if any) and returns
 *       // { access_token, visitor_id }. Passing visitorId back keeps a returning visitor's
 *       // conversation; bind signed-in customers with external_user_id instead.
 *       getToken: ({ visitorId }) => fetch('/companin-token', {
 *         method: 'POST', headers: { 'Content-Type': 'application/json' },
 *         body: JSON.stringify({ visitor_id: visitorId }) }).then(r => r.json()),
 *       title: 'Ask us anything',
 *     });
 *   </script>
 *
 * Options: getToken (required), server (default: where widget.js came from), title,
 * greeting, container (an element to render into instead of the floating button), open.
 * The widget opens a session, streams replies over websocket (graphql-transport-ws), shows
 * the sources an answer cites, lets the visitor rate an answer, and after a network drop
 * reconnects and re-attaches to the reply that was streaming. "Talk to a person" hands the
 * conversation to the organization's people: the widget then says so, and shows their
 * messages live (and those written while it was offline, once it is back).
 */
(function () {
  'use strict';

  var script = document.currentScript;
  var DEFAULT_SERVER = script ? new URL(script.src, location.href).origin : location.origin;
  var CSS = [
    '.cmpw{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:#1d2330}',
    '.cmpw *{box-sizing:border-box}',
    '.cmpw-launch{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;background:#3b4cca;color:#fff;font:inherit;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.2)}',
    '.cmpw-panel{display:flex;flex-direction:column;width:360px;max-width:100%;height:520px;max-height:100%;background:#fff;border:1px solid #d5d9e2;border-radius:12px;overflow:hidden;box-shadow:0 8px 28px rgba(0,0,0,.18)}',
    '.cmpw-floating{position:fixed;right:20px;bottom:76px;z-index:2147483000}',
    '.cmpw-head{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;background:#3b4cca;color:#fff;font-weight:600}',
    '.cmpw-head button{background:transparent;border:0;color:#fff;font-size:18px;cursor:pointer}',
    '.cmpw-status{font-size:12px;font-weight:400;opacity:.85;margin-left:8px}',
    '.cmpw-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;margin:0;list-style:none}',
    '.cmpw-msg{max-width:85%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}',
    '.cmpw-user{align-self:flex-end;background:#3b4cca;color:#fff}',
    '.cmpw-bot{align-self:flex-start;background:#f0f2f7}',
    '.cmpw-agent{align-self:flex-start;background:#e6f4ea;border:1px solid #b7dfc3}',
    '.cmpw-author{display:block;font-size:12px;font-weight:600;color:#2d6a3e}',
    '.cmpw-banner{padding:6px 14px;background:#fff6e0;border-bottom:1px solid #f0dfb0;font-size:13px}',
    '.cmpw-person{margin:0 10px 8px;align-self:flex-start;border:1px solid #c9ceda;background:#fff;border-radius:8px;padding:4px 10px;font:inherit;font-size:12px;cursor:pointer}',
    '.cmpw-error{color:#a4262c}',
    '.cmpw-sources{margin:6px 0 0;padding:0;list-style:none;font-size:12px;color:#4a5263}',
    '.cmpw-sources li:before{content:"\\2197  "}',
    '.cmpw-rate{display:flex;gap:6px;margin-top:6px;align-items:center;font-size:12px;color:#4a5263}',
    '.cmpw-rate button{border:1px solid #c9ceda;background:#fff;border-radius:6px;cursor:pointer;padding:2px 8px;font:inherit}',
    '.cmpw-rate button[aria-pressed=true]{background:#3b4cca;color:#fff;border-color:#3b4cca}',
    '.cmpw-form{display:flex;gap:6px;padding:10px;border-top:1px solid #e3e6ee}',
    '.cmpw-form input{flex:1;padding:8px 10px;border:1px solid #c9ceda;border-radius:8px;font:inherit}',
    '.cmpw-form button{border:0;border-radius:8px;padding:8px 14px;background:#3b4cca;color:#fff;font:inherit;cursor:pointer}',
    '.cmpw button:focus-visible,.cmpw input:focus-visible{outline:3px solid #f5a623;outline-offset:1px}',
    '.cmpw-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}'
  ].join('\n');

  var CHAT = 'subscription Chat($input: SendMessageInput!) { chat(input: $input) { ...E } }';
  var REATTACH = 'subscription Reattach($id: ID!) { replyStream(messageId: $id) { ...E } }';
  var EVENTS = ' fragment E on ReplyEvent { __typename' +
    ' ... on ReplyStarted { conversationId messageId }' +
    ' ... on ReplyDelta { messageId index delta }' +
    ' ... on ReplyCitations { messageId citations { sourceId title } }' +
    ' ... on ReplyCompleted { message { id conversationId content status citations { sourceId title } } }' +
    ' ... on ReplyFailed { messageId error }' +
    ' ... on VisitorMessage { message { id conversationId } }' +
    ' ... on AgentMessage { message { id conversationId content agent { name } } }' +
    ' ... on ConversationStatusChanged { conversation { id status } } }';
  var WATCH = 'subscription Watch($id: ID!) { conversationEvents(conversationId: $id) { ...E } }';
  var HANDOFF = 'mutation Handoff($id: ID!) { requestHandoff(conversationId: $id, reason: "asked in the chat widget") { id status } }';
  var FEEDBACK = 'mutation Rate($input: FeedbackInput!) { submitFeedback(input: $input) { id rating } }';

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) node.setAttribute(name, attrs[name]);
    if (text) node.textContent = text;
    return node;
  }

  function Widget(options) {
    if (typeof options.getToken !== 'function') throw new Error('Companin.mount: getToken is required');
    this.options = options;
    this.server = (options.server || DEFAULT_SERVER).replace(/\/$/, '');
    this.token = null;
    this.socket = null;
    this.acked = false;
    this.queue = [];
    this.ops = {};
    this.nextId = 1;
    this.retry = 0;
    this.replies = {};
    this.conversationId = null;
    this.state = 'BOT';
    this.watching = null;
    this.shown = {};
    this.lastSeen = null;
    this.storeKey = 'companin.widget.' + this.server;
    this.stored = this.load();
    this.render();
  }

  Widget.prototype.render = function () {
    var self = this;
    if (!document.getElementById('cmpw-style')) {
      var style = el('style', { id: 'cmpw-style' });
      style.textContent = CSS;
      document.head.appendChild(style);
    }
    var root = el('div', { 'class': 'cmpw' });
    var panel = el('section', { 'class': 'cmpw-panel', role: 'dialog', 'aria-label': this.options.title || 'Chat' });
    var head = el('div', { 'class': 'cmpw-head' });
    var title = el('span', {}, this.options.title || 'Chat with us');
    this.statusNode = el('span', { 'class': 'cmpw-status', role: 'status' }, '');
    title.appendChild(this.statusNode);
    head.appendChild(title);
    this.banner = el('div', { 'class': 'cmpw-banner', role: 'status' });
    this.banner.hidden = true;
    this.log = el('ol', { 'class': 'cmpw-log', 'aria-live': 'polite', 'aria-label': 'Conversation' });
    this.personButton = el('button', { type: 'button', 'class': 'cmpw-person' }, 'Talk to a person');
    this.personButton.hidden = true;
    this.personButton.addEventListener('click', function () { self.askForPerson(); });
    var form = el('form', { 'class': 'cmpw-form' });
    var label = el('label', { 'class': 'cmpw-sr', 'for': 'cmpw-input' }, 'Your message');
    this.input = el('input', { id: 'cmpw-input', type: 'text', autocomplete: 'off', placeholder: 'Type your question…', maxlength: '4000' });
    this.sendButton = el('button', { type: 'submit' }, 'Send');
    form.appendChild(label);
    form.appendChild(this.input);
    form.appendChild(this.sendButton);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var text = self.input.value.trim();
      if (text) { self.input.value = ''; self.send(text); }
    });
    panel.appendChild(head);
    panel.appendChild(this.banner);
    panel.appendChild(this.log);
    panel.appendChild(this.personButton);
    panel.appendChild(form);
    panel.addEventListener('keydown', function (e) { if (e.key === 'Escape' && self.launcher) self.toggle(false); });
    if (this.options.greeting) this.bubble('bot', this.options.greeting);

    if (this.options.container) {
      this.options.container.appendChild(root);
      root.appendChild(panel);
      this.start();
    } else {
      panel.classList.add('cmpw-floating');
      var close = el('button', { type: 'button', 'aria-label': 'Close chat' }, '\u00d7');
      close.addEventListener('click', function () { self.toggle(false); });
      head.appendChild(close);
      this.launcher = el('button', { type: 'button', 'class': 'cmpw-launch', 'aria-expanded': 'false', 'aria-haspopup': 'dialog' }, this.options.launcherText || 'Chat with us');
      this.launcher.addEventListener('click', function () { self.toggle(panel.hidden); });
      panel.hidden = true;
      root.appendChild(panel);
      root.appendChild(this.launcher);
      document.body.appendChild(root);
      if (this.options.open) this.toggle(true);
    }
    this.panel = panel;
  };

  Widget.prototype.toggle = function (open) {
    this.panel.hidden = !open;
    this.launcher.setAttribute('aria-expanded', String(open));
    if (open) { this.start(); this.input.focus(); } else { this.launcher.focus(); }
  };

  Widget.prototype.status = function (text) { this.statusNode.textContent = text ? '· ' + text : ''; };

  Widget.prototype.start = function () {
    if (this.started) return;
    this.started = true;
    this.connect();
  };

  /** What the widget remembers in this browser: the visitor and their open session. */
  Widget.prototype.load = function () {
    try { return JSON.parse(localStorage.getItem(this.storeKey) || '{}') || {}; } catch (e) { return {}; }
  };

  Widget.prototype.save = function () {
    try { localStorage.setItem(this.storeKey, JSON.stringify(this.stored)); } catch (e) { /* private mode */ }
  };

  /** A token for the same visitor as before, so their session and replies stay theirs. */
  Widget.prototype.freshToken = function () {
    var self = this;
    return Promise.resolve(this.options.getToken({ visitorId: this.stored.visitor || null })).then(function (answer) {
      var token = typeof answer === 'string' ? answer : answer && answer.access_token;
      if (!token) throw new Error('getToken returned no access_token');
      if (answer.visitor_id && answer.visitor_id !== self.stored.visitor) {
        self.stored = { visitor: answer.visitor_id };
        self.save();
      }
      self.token = token;
      return token;
    });
  };

  Widget.prototype.http = function (method, path, body) {
    var self = this;
    var attempt = function (retried) {
      return fetch(self.server + path, {
        method: method,
        headers: { 'Authorization': 'Bearer ' + self.token, 'Content-Type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined
      }).then(function (r) {
        if (r.status === 401 && !retried) return self.freshToken().then(function () { return attempt(true); });
        return r.json().then(function (json) {
          if (!r.ok || json.errors) {
            var error = json.error || (json.errors && json.errors[0]) || {};
            throw new Error(error.message || ('HTTP ' + r.status));
          }
          return json;
        });
      });
    };
    return (this.token ? Promise.resolve() : this.freshToken()).then(function () { return attempt(false); });
  };

  /** The visitor's open session: the stored one when it still takes messages, else a new one. */
  Widget.prototype.session = function () {
    var self = this;
    if (this.sessionPromise) return this.sessionPromise;
    var stored = this.stored;
    var open = function () {
      return self.http('POST', '/api/v1/sessions', { channel: 'widget' }).then(function (s) {
        self.stored.session = s.id;
        self.save();
        return s.id;
      });
    };
    this.sessionPromise = (stored.session
      ? this.http('GET', '/api/v1/sessions/' + stored.session).then(function (s) {
          return s.ended_at || new Date(s.expires_at) <= new Date() ? open() : s.id;
        }, open)
      : open());
    this.sessionPromise.catch(function () { self.sessionPromise = null; });
    return this.sessionPromise;
  };

  Widget.prototype.connect = function () {
    var self = this;
    this.freshToken().then(function (token) {
      var url = self.server.replace(/^http/, 'ws') + '/graphql';
      var socket = new WebSocket(url, 'graphql-transport-ws');
      self.socket = socket;
      self.acked = false;
      self.status('connecting');
      socket.onopen = function () {
        socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: 'Bearer ' + token } }));
      };
      socket.onmessage = function (event) { self.receive(JSON.parse(event.data)); };
      socket.onclose = function (event) {
        self.acked = false;
        if (self.socket !== socket) return;
        self.socket = null;
        // Operations die with the socket; streaming replies are re-attached after the ack.
        self.ops = {};
        self.queue = [];
        for (var id in self.replies) self.replies[id].attached = false;
        if (self.watching) self.watching.attached = false;
        self.status('reconnecting');
        var delay = Math.min(30000, 500 * Math.pow(2, self.retry++));
        setTimeout(function () { self.connect(); }, event.code === 4403 ? 0 : delay);
      };
    }, function (error) {
      self.status('offline');
      setTimeout(function () { self.connect(); }, Math.min(30000, 1000 * Math.pow(2, self.retry++)));
      console.warn('Companin widget: could not get a token', error);
    });
  };

  Widget.prototype.receive = function (frame) {
    var op = frame.id && this.ops[frame.id];
    switch (frame.type) {
      case 'connection_ack':
        this.acked = true;
        this.retry = 0;
        this.status('');
        this.resume();
        while (this.queue.length) this.socket.send(this.queue.shift());
        break;
      case 'ping':
        this.socket.send(JSON.stringify({ type: 'pong' }));
        break;
      case 'next':
        if (op) {
          if (frame.payload.errors) op.fail(frame.payload.errors[0].message);
          else op.event(frame.payload.data.chat || frame.payload.data.replyStream || frame.payload.data.conversationEvents);
        }
        break;
      case 'error':
        if (op) { op.fail(frame.payload[0] && frame.payload[0].message); delete this.ops[frame.id]; }
        break;
      case 'complete':
        delete this.ops[frame.id];
        break;
    }
  };

  Widget.prototype.subscribe = function (query, variables, handlers) {
    var id = String(this.nextId++);
    this.ops[id] = handlers;
    var frame = JSON.stringify({ id: id, type: 'subscribe', payload: { query: query + EVENTS, variables: variables } });
    if (this.socket && this.acked) this.socket.send(frame); else this.queue.push(frame);
    return id;
  };

  /** Re-attaches to every reply that was still streaming when the connection dropped. */
  Widget.prototype.resume = function () {
    for (var messageId in this.replies) {
      var reply = this.replies[messageId];
      if (!reply.done && !reply.attached) this.follow(reply);
    }
    if (this.watching && !this.watching.attached) this.watch(this.watching.conversationId, true);
  };

  Widget.prototype.follow = function (reply) {
    reply.attached = true;
    this.subscribe(REATTACH, { id: reply.id }, this.handlers(reply, function () { reply.attached = false; }));
  };

  Widget.prototype.send = function (text) {
    var self = this;
    this.bubble('user', text);
    var reply = { id: null, text: '', lastIndex: -1, done: false, node: this.bubble('bot', '…') };
    reply.node.setAttribute('aria-busy', 'true');
    this.session().then(function (sessionId) {
      self.subscribe(CHAT, { input: { sessionId: sessionId, message: text } }, self.handlers(reply, function () {
        reply.attached = false;
      }));
    }, function (error) { self.failed(reply, error.message); });
  };

  Widget.prototype.handlers = function (reply, onDrop) {
    var self = this;
    return {
      event: function (e) {
        switch (e.__typename) {
          case 'ReplyStarted':
            reply.id = e.messageId;
            reply.conversationId = e.conversationId;
            // The assistant answers: the conversation is its own again (or a new one).
            self.setState(e.conversationId, 'BOT');
            reply.attached = true;
            self.replies[reply.id] = reply;
            break;
          case 'ReplyDelta':
            if (e.index <= reply.lastIndex) return;
            reply.lastIndex = e.index;
            reply.text += e.delta;
            reply.id = e.messageId;
            self.replies[reply.id] = reply;
            reply.node.textSpan.textContent = reply.text;
            break;
          case 'ReplyCitations':
            self.sources(reply, e.citations);
            break;
          case 'ReplyCompleted':
            reply.done = true;
            reply.id = e.message.id;
            reply.conversationId = e.message.conversationId;
            reply.text = e.message.content;
            reply.node.textSpan.textContent = reply.text;
            reply.node.removeAttribute('aria-busy');
            self.seen(e.message.id);
            self.sources(reply, e.message.citations);
            self.rating(reply);
            break;
          case 'ReplyFailed':
            reply.done = true;
            self.failed(reply, e.error);
            break;
          case 'VisitorMessage':
            // A person answers this conversation: no reply is generated for the message.
            reply.done = true;
            reply.id = e.message.id;
            if (reply.node.parentNode) reply.node.parentNode.removeChild(reply.node);
            self.conversationId = e.message.conversationId;
            self.seen(e.message.id);
            break;
          default:
            self.conversationEvent(e);
        }
      },
      fail: function (message) {
        if (onDrop) onDrop();
        if (!reply.id) self.failed(reply, message || 'The message could not be sent.');
      }
    };
  };

  /** A person's message, or a change of the conversation's state. */
  Widget.prototype.conversationEvent = function (e) {
    if (e.__typename === 'AgentMessage') this.agentMessage(e.message);
    else if (e.__typename === 'ConversationStatusChanged') this.setState(e.conversation.id, e.conversation.status);
  };

  /** Remembers the newest message of the conversation shown, to catch up from after a drop. */
  Widget.prototype.seen = function (messageId) {
    if (!this.lastSeen || messageId > this.lastSeen) this.lastSeen = messageId;
  };

  /** Who answers the conversation: the banner, the "talk to a person" button, and whether
   *  the widget follows the conversation for a person's messages. */
  Widget.prototype.setState = function (conversationId, status) {
    if (conversationId !== this.conversationId) this.lastSeen = null;
    this.conversationId = conversationId;
    this.state = status;
    this.banner.hidden = status === 'BOT';
    this.banner.textContent = status === 'HANDED_OFF' ? 'A person will answer here.'
      : status === 'CLOSED' ? 'This conversation has ended. Write to start a new one.' : '';
    this.personButton.hidden = status !== 'BOT';
    if (status === 'HANDED_OFF') this.watch(conversationId, false); else this.unwatch();
  };

  /** Follows the conversation's events while a person answers; after a drop, first shows
   *  the messages written meanwhile. */
  Widget.prototype.watch = function (conversationId, catchUp) {
    var current = this.watching;
    if (current && current.conversationId === conversationId && current.attached) return;
    this.unwatch();
    var self = this;
    var watching = { conversationId: conversationId, attached: true };
    watching.id = this.subscribe(WATCH, { id: conversationId }, {
      event: function (e) { self.conversationEvent(e); },
      fail: function () { watching.attached = false; }
    });
    this.watching = watching;
    if (catchUp && this.lastSeen) this.catchUp(conversationId, this.lastSeen);
  };

  Widget.prototype.unwatch = function () {
    var watching = this.watching;
    this.watching = null;
    if (!watching || !this.ops[watching.id]) return;
    delete this.ops[watching.id];
    if (this.socket && this.acked) this.socket.send(JSON.stringify({ id: watching.id, type: 'complete' }));
  };

  /** The person's messages written after `after` (while the widget was offline). */
  Widget.prototype.catchUp = function (conversationId, after) {
    var self = this;
    var path = '/api/v1/conversations/' + encodeURIComponent(conversationId) + '/messages?limit=100&cursor=' + encodeURIComponent(after);
    this.http('GET', path).then(function (page) {
      page.data.forEach(function (m) { if (m.role === 'AGENT') self.agentMessage(m); });
      if (page.next_cursor) self.catchUp(conversationId, page.next_cursor);
    }, function (error) { console.warn('Companin widget: could not catch up', error); });
  };

  Widget.prototype.agentMessage = function (message) {
    if (this.shown[message.id]) return;
    this.shown[message.id] = true;
    this.seen(message.id);
    var item = this.bubble('agent', message.content);
    var name = message.agent && message.agent.name;
    item.insertBefore(el('span', { 'class': 'cmpw-author' }, name || 'Support'), item.textSpan);
  };

  /** The visitor asks for a person ("talk to a person"). */
  Widget.prototype.askForPerson = function () {
    var self = this;
    if (!this.conversationId) return;
    this.personButton.disabled = true;
    this.http('POST', '/graphql', { query: HANDOFF, variables: { id: this.conversationId } }).then(function (json) {
      var c = json.data.requestHandoff;
      self.setState(c.id, c.status);
    }, function (error) { self.status(error.message); }).then(function () {
      self.personButton.disabled = false;
    });
  };

  Widget.prototype.bubble = function (who, text) {
    var item = el('li', { 'class': 'cmpw-msg cmpw-' + who });
    item.appendChild(el('span', { 'class': 'cmpw-sr' }, who === 'user' ? 'You: ' : who === 'agent' ? 'Support: ' : 'Assistant: '));
    item.textSpan = el('span', { 'class': 'cmpw-text' }, text);
    item.appendChild(item.textSpan);
    this.log.appendChild(item);
    this.log.scrollTop = this.log.scrollHeight;
    return item;
  };

  Widget.prototype.failed = function (reply, message) {
    reply.done = true;
    reply.node.removeAttribute('aria-busy');
    reply.node.classList.add('cmpw-error');
    reply.node.textSpan.textContent = message || 'Something went wrong.';
  };

  Widget.prototype.sources = function (reply, citations) {
    if (!citations || !citations.length || reply.sourcesShown) return;
    reply.sourcesShown = true;
    var list = el('ul', { 'class': 'cmpw-sources', 'aria-label': 'Sources' });
    citations.forEach(function (c) { list.appendChild(el('li', {}, c.title || c.sourceId)); });
    reply.node.appendChild(list);
  };

  Widget.prototype.rating = function (reply) {
    var self = this;
    var row = el('div', { 'class': 'cmpw-rate', role: 'group', 'aria-label': 'Rate this answer' });
    row.appendChild(el('span', { 'aria-hidden': 'true' }, 'Helpful?'));
    [['Yes', 5, 'Helpful'], ['No', 1, 'Not helpful']].forEach(function (choice) {
      var button = el('button', { type: 'button', 'aria-label': choice[2], 'aria-pressed': 'false', 'data-rating': String(choice[1]) }, choice[0]);
      button.addEventListener('click', function () {
        var input = { conversationId: reply.conversationId, messageId: reply.id, rating: choice[1] };
        self.http('POST', '/graphql', { query: FEEDBACK, variables: { input: input } }).then(function () {
          Array.prototype.forEach.call(row.querySelectorAll('button'), function (b) { b.setAttribute('aria-pressed', String(b === button)); });
          self.status('thanks for your feedback');
        }, function (error) { self.status(error.message); });
      });
      row.appendChild(button);
    });
    reply.node.appendChild(row);
  };

  window.Companin = {
    /** Renders a chat widget; returns it. */
    mount: function (options) { return new Widget(options || {}); }
  };
})();

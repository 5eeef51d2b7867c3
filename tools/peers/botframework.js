// A Bot Framework SDK bot that counts the turns of each conversation in
// in-memory state and answers with a suggested action, the peer of
// Parley's web channel in scripts/perf.sh. Requests carry
// deliveryMode "expectReplies", so the replies come back in the HTTP
// response. No app id or password: the SDK accepts unauthenticated
// requests, as the Bot Framework Emulator does locally.
//
//   PORT=3978 node botframework.js
'use strict';
const express = require('express');
const {
  CloudAdapter, ConfigurationBotFrameworkAuthentication, ConversationState, MemoryStorage, MessageFactory,
} = require('botbuilder');

const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication({}));
adapter.onTurnError = async (context, error) => {
  console.error('turn failed:', error);
  await context.sendActivity('Sorry, something went wrong.');
};
const state = new ConversationState(new MemoryStorage());
const turns = state.createProperty('turns');

async function bot(context) {
  if (context.activity.type !== 'message') return;
  const n = (await turns.get(context, 0)) + 1;
  await turns.set(context, n);
  await context.sendActivity(MessageFactory.suggestedActions(['again'], `Hello ${context.activity.from.id}, turn ${n}`));
  await state.saveChanges(context);
}

const app = express();
app.use(express.json());
app.post('/api/messages', (req, res) => adapter.process(req, res, bot));
app.get('/readyz', (req, res) => res.send('ready'));
app.listen(Number(process.env.PORT || 3978), '127.0.0.1');

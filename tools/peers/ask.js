// An ASK SDK skill on the express adapter: one IntentRequest handler that
// counts the session's turns in the session attributes (which travel in
// the request and the response: no store at all) and answers with a slot
// and a reprompt, the peer of Parley's Alexa channel in scripts/perf.sh.
// The skill id and the timestamp are checked, the signature is not (as in
// Parley with verify_signature false).
//
//   PORT=3979 SKILL_ID=amzn1.ask.skill.... node ask.js
'use strict';
const express = require('express');
const Alexa = require('ask-sdk-core');
const { ExpressAdapter } = require('ask-sdk-express-adapter');

const OrderPizza = {
  canHandle(input) {
    return Alexa.getRequestType(input.requestEnvelope) === 'IntentRequest' &&
      Alexa.getIntentName(input.requestEnvelope) === 'OrderPizza';
  },
  handle(input) {
    const attrs = input.attributesManager.getSessionAttributes();
    attrs.turns = (attrs.turns || 0) + 1;
    input.attributesManager.setSessionAttributes(attrs);
    const size = Alexa.getSlotValue(input.requestEnvelope, 'size') || 'medium';
    return input.responseBuilder
      .speak(`A ${size} pizza, turn ${attrs.turns}. Anything else?`)
      .reprompt('Anything else?')
      .getResponse();
  },
};

const skill = Alexa.SkillBuilders.custom()
  .withSkillId(process.env.SKILL_ID)
  .addRequestHandlers(OrderPizza)
  .create();
const adapter = new ExpressAdapter(skill, false, true); // signature unchecked, timestamp checked

const app = express();
app.post('/', adapter.getRequestHandlers());
app.get('/readyz', (req, res) => res.send('ready'));
app.listen(Number(process.env.PORT || 3979), '127.0.0.1');

// Companin's /v1 as OpenAI's npm package sees it: models, a completion, a stream.
// Usage: node openai-sdk.mjs BASE_URL API_KEY   (after sdk-checks.py made the assistant)
import OpenAI from "openai";

const [base, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
const fail = (name, detail) => {
  console.error(`FAILED ${name}: ${JSON.stringify(detail)}`);
  process.exit(1);
};
const check = (name, ok, detail) => (ok ? console.log(`ok ${name}`) : fail(name, detail));

const models = [];
for await (const model of client.models.list()) models.push(model);
const helper = models.find((m) => m.companin?.name === "Shop helper");
check("npm: models.list names the assistant", helper, models);

const question = "What is the refund window?";
const answer = "Refunds are accepted within 30 days of delivery.";
const completion = await client.chat.completions.create({
  model: "Shop helper",
  messages: [{ role: "user", content: question }],
});
check("npm: chat.completions.create answers", completion.choices[0].message.content === answer, completion);

const stream = await client.chat.completions.create({
  model: helper.id,
  messages: [{ role: "user", content: question }],
  stream: true,
});
let text = "";
let finish = null;
for await (const chunk of stream) {
  for (const choice of chunk.choices) {
    text += choice.delta?.content ?? "";
    finish = choice.finish_reason ?? finish;
  }
}
check("npm: a streamed completion carries the answer", text === answer && finish === "stop", { text, finish });

try {
  await client.chat.completions.create({ model: "Nobody", messages: [{ role: "user", content: "Hi" }] });
  fail("npm: an unknown model is NotFoundError", "answered");
} catch (e) {
  check("npm: an unknown model is NotFoundError", e instanceof OpenAI.NotFoundError, String(e));
}
console.log("openai-sdk.mjs: all passed");

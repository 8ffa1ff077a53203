// Runs graphql-http's server audits (the GraphQL over HTTP specification) against a running
// server, with an API key on every request; prints each audit that did not pass and the
// counts, and fails when a MUST audit fails. Usage (graphql-http and graphql installed with npm):
//   node scripts/audit/graphql-http.mjs http://127.0.0.1:8080/graphql cmp_live_…
import { serverAudits } from 'graphql-http';

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: graphql-http.mjs GRAPHQL_URL API_KEY');
  process.exit(2);
}
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('x-api-key', key);
  return fetch(input, { ...init, headers });
};
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  counts[result.status] = (counts[result.status] ?? 0) + 1;
  if (result.status !== 'ok') {
    console.log(`${result.status}: ${audit.name}${result.reason ? ` (${result.reason})` : ''}`);
  }
}
console.log(`graphql-http audits: ${counts.ok} ok, ${counts.error} MUST failed, ${counts.warn} SHOULD and ${counts.notice} MAY not met`);
process.exit(counts.error ? 1 : 0);

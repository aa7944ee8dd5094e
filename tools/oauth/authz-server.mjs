// A real OAuth 2 authorization server for tests/e2e/oauth.rs: oauth2-mock-server's
// issuer and service (discovery at /.well-known/openid-configuration, keys at /jwks,
// tokens from POST /token) behind a plain node:http server on 127.0.0.1 that counts
// the requests per path.
//
// Prints one JSON line when it listens: {"issuer": "http://127.0.0.1:PORT"}.
// Token requests (grant_type=client_credentials, scope, aud as usual; `resource` (RFC
// 8707) becomes `aud` and the client id `sub` when they are not given) may carry these
// test fields, applied to the token before it is signed:
//   sub=S        the subject (client_credentials tokens have none otherwise)
//   exp_in=N     exp = now + N seconds (negative: already expired)
//   nbf_in=N     nbf = now + N seconds
//   iss=URL      another issuer claim (signed by this server's key all the same)
//   scp=1        the scopes as an `scp` array instead of the `scope` string
// Commands on stdin, one per line, each answered by one JSON line on stdout:
//   rotate ALG   adds a new signing key (RS256, ES256, EdDSA, ...): {"kid": "..."}
//   stats        {"counts": {"/jwks": N, ...}}
// Exits when stdin closes.
import http from "node:http";
import readline from "node:readline";
import { OAuth2Issuer, OAuth2Service } from "oauth2-mock-server";

const issuer = new OAuth2Issuer();
await issuer.keys.generate("RS256");
const service = new OAuth2Service(issuer);

// The client id of a client_secret_basic request (RFC 6749 §2.3.1).
function basicClientId(req) {
  const [scheme, value] = (req.headers.authorization ?? "").split(" ");
  if (scheme?.toLowerCase() !== "basic" || !value) return undefined;
  return decodeURIComponent(Buffer.from(value, "base64").toString().split(":")[0]);
}

// A real authorization server grants a code the scope asked for at /authorize (the
// mock alone would grant "dummy").
const codeScopes = new Map();
service.on("beforeAuthorizeRedirect", (redirect, req) => {
  const code = redirect.url.searchParams.get("code");
  const scope = new URL(req.url ?? "/", "http://localhost").searchParams.get("scope");
  if (code && scope && codeScopes.size < 1000) codeScopes.set(code, scope);
});

service.on("beforeTokenSigning", (token, req) => {
  const body = req.body ?? {};
  if (body.grant_type === "authorization_code" && codeScopes.has(body.code)) {
    token.payload.scope = codeScopes.get(body.code);
    codeScopes.delete(body.code);
  }
  const now = Math.floor(Date.now() / 1000);
  // RFC 8707: the resource a client asks a token for is its audience; a client
  // credentials token's subject is the client, as real authorization servers make them.
  if (token.payload.aud === undefined && typeof body.resource === "string") {
    token.payload.aud = body.resource;
  }
  const client = basicClientId(req) ?? body.client_id;
  if (token.payload.sub === undefined && typeof client === "string") token.payload.sub = client;
  if (typeof body.sub === "string") token.payload.sub = body.sub;
  if (body.exp_in !== undefined) token.payload.exp = now + Number(body.exp_in);
  if (body.nbf_in !== undefined) token.payload.nbf = now + Number(body.nbf_in);
  if (typeof body.iss === "string") token.payload.iss = body.iss;
  if (body.scp === "1" && typeof token.payload.scope === "string") {
    token.payload.scp = token.payload.scope.split(" ").filter(Boolean);
    delete token.payload.scope;
  }
});

const counts = {};
const server = http.createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  counts[path] = (counts[path] ?? 0) + 1;
  service.requestHandler(req, res);
});

server.listen(0, "127.0.0.1", () => {
  issuer.url = `http://127.0.0.1:${server.address().port}`;
  console.log(JSON.stringify({ issuer: issuer.url }));
});

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const [command, arg] = line.trim().split(/\s+/);
  try {
    if (command === "rotate") {
      const jwk = await issuer.keys.generate(arg || "RS256");
      console.log(JSON.stringify({ kid: jwk.kid }));
    } else if (command === "stats") {
      console.log(JSON.stringify({ counts }));
    } else {
      console.log(JSON.stringify({ error: `unknown command ${command}` }));
    }
  } catch (e) {
    console.log(JSON.stringify({ error: String(e) }));
  }
});
lines.on("close", () => {
  server.close();
  process.exit(0);
});

// The tests' worker (test/config.capnp): runs the cases of a vector file
// POSTed to /vectors inside workerd, answering each case's outcome for the
// test to compare with its `expect`; POST /sign signs a message for interop.
import { outcome, parseVectors } from "../../node/vectors.js";
import { signer } from "../signer.js";

const json = (value, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

export default {
  async fetch(request) {
    const hooksign = await signer();
    const { pathname } = new URL(request.url);
    if (request.method === "POST" && pathname === "/vectors") {
      const { format, cases } = parseVectors(await request.text());
      return json({
        format,
        outcomes: cases.map((c) => {
          try {
            return { name: c.name, outcome: outcome(hooksign, c) };
          } catch (error) {
            return { name: c.name, thrown: String(error) };
          }
        }),
      });
    }
    if (request.method === "POST" && pathname === "/sign") {
      const { secrets, id, timestamp, payload } = await request.json();
      return json({ signature: hooksign.sign(secrets, id, timestamp, payload) });
    }
    if (request.method === "GET" && pathname === "/secret") {
      return json({ secret: hooksign.generateSecret() });
    }
    return json({ error: "not found" }, 404);
  },
};

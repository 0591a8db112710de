// The Node.js server-side quickstart from the Truebar Streaming STT guide (seed 000), copied verbatim; only its
// line breaks and indentation were restored. tests/test_seed_clients_truebar.py runs it.
import axios from "axios";
import WebSocket from "ws";
import { readFileSync } from "node:fs";

const tokensToText = (tokens = []) => {
  let output = "";
  let prevRight = false;
  tokens.forEach((token, index) => {
    const text = token?.text ?? "";
    if (!text) return;
    const left = Boolean(token?.isLeftHanded);
    if (index > 0 && !prevRight && !left) {
      output += " ";
    }
    output += text;
    prevRight = Boolean(token?.isRightHanded);
  });
  return output;
};

async function fetchToken() {
  const form = new URLSearchParams({
    grant_type: "password",
    username: process.env.TRUEBAR_USERNAME,
    password: process.env.TRUEBAR_PASSWORD,
    client_id: process.env.TRUEBAR_CLIENT_ID ?? "truebar-client",
  });

  const { data } = await axios.post(process.env.TRUEBAR_AUTH_URL, form, {
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });

  if (!data?.access_token) throw new Error("Missing access_token");
  return data.access_token;
}

const token = await fetchToken();
const ws = new WebSocket(process.env.TRUEBAR_STT_WS_URL, {
  headers: { Authorization: `Bearer ${token}` },
});

const pcm = readFileSync("sample.pcm");
const chunkSize = 3200 * 2; // 100 ms @ 16 kHz (16-bit samples)
let streamed = false;

ws.on("message", (payload, isBinary) => {
  if (isBinary) return;
  const msg = JSON.parse(payload.toString());

  if (msg.type === "STATUS") {
    console.log("STATUS:", msg.status);
    if (msg.status === "CONFIGURED" && !streamed) {
      streamed = true;
      for (let offset = 0; offset < pcm.length; offset += chunkSize) {
        ws.send(pcm.subarray(offset, offset + chunkSize));
      }
      ws.send(JSON.stringify({ type: "EOS", lockSession: false }));
    }
    if (msg.status === "FINISHED") ws.close();
    return;
  }

  if (msg.type === "TEXT_SEGMENT") {
    const text = tokensToText(msg.textSegment.tokens);
    const label = msg.textSegment.isFinal ? "FINAL" : "INTERIM";
    console.log(`${label} - ${text}`);
  }

  if (msg.type === "ERROR") {
    console.error("Streaming error", msg);
    ws.close();
  }
});

ws.once("open", () => {
  ws.send(
    JSON.stringify({
      type: "CONFIG",
      pipeline: [
        {
          task: "ASR",
          exceptionHandlingPolicy: "THROW",
          config: {
            tag: process.env.TRUEBAR_ASR_TAG ?? "KALDI:en-US:*:*",
            parameters: { enableInterims: true },
          },
        },
      ],
    }),
  );
});

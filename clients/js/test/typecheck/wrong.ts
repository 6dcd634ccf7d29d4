// A consumer with a misspelt field: `tsc --noEmit` must refuse it (test/typecheck.test.mjs).
import { connect } from "@eventbridge/client";

const client = connect({ url: "http://127.0.0.1:8000" });
client.on("progress_update", (event) => {
  console.log(event.data.progres);
});

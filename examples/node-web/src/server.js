// A tiny HTTP server; edit the greeting and watch nodemon pick it up in the pod.
const http = require("http");

const greeting = process.env.GREETING || "hello from ksync";

http
  .createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`${greeting}\n`);
  })
  .listen(process.env.PORT || 8080);

"""A headless Chromium driven through the DevTools protocol (websocket-client, already a Jupyter dependency):
open a page, wait until it, its images and its fonts have loaded, read facts from the DOM and the URLs it requested."""
import json, shutil, subprocess, tempfile, time, urllib.request
from urllib.parse import unquote
from pathlib import Path
import websocket

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

_FACTS = """JSON.stringify({ready: document.readyState, title: document.title, fonts: document.fonts.status,
  images: Array.from(document.images).map(i => ({src: i.getAttribute('src').slice(0, 80), complete: i.complete, width: i.naturalWidth})),
  tables: document.querySelectorAll('table').length, sidebar: !!document.querySelector('nav.lw-sidebar'),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href), text: document.body ? document.body.innerText : '',
  heading: (document.querySelector('h1, h2, h3, h4, h5, h6') || {}).textContent || null,
  first_cell: (document.querySelector('.jp-Cell') || {className: ''}).className, katex: document.querySelectorAll('.katex').length,
  katex_errors: document.querySelectorAll('.katex-error').length,
  loaded_fonts: Array.from(document.fonts).filter(f => f.status === 'loaded').map(f => f.family)})"""


class Chromium:
    "Context manager: a headless Chromium with one page; `facts(url)` loads `url` and returns DOM facts"
    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix="lw-chromium-")
        self.proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                      "--disable-component-update", "--disable-sync", "--no-first-run", "--allow-file-access-from-files",
                                      f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = Path(self.profile)/"DevToolsActivePort", time.time() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.time() > deadline or self.proc.poll() is not None: raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        while True:
            pages = [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list")) if t["type"] == "page"]
            if pages or time.time() > deadline: break
            time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], suppress_origin=True, timeout=60)
        self.n, self.requests = 0, []
        self.send("Network.enable")
        return self

    def send(self, method, **params):
        "Call DevTools `method` and return its result (recording the URLs of requests reported meanwhile)"
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == "Network.requestWillBeSent": self.requests.append(msg["params"]["request"]["url"])
            if msg.get("id") == self.n:
                if "error" in msg: raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression):
        "Value of JavaScript `expression` in the page"
        return self.send("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def facts(self, url, timeout=60) -> dict:
        """Load `url`; once the document, every image and its fonts are complete, return title, images, tables, links,
        text, headings, math and the URLs the page requested (`requests`)"""
        self.requests = []
        self.send("Page.navigate", url=url)
        deadline = time.time() + timeout
        while True:
            time.sleep(0.2)
            f = json.loads(self.evaluate(_FACTS) or "{}")
            if (f.get("ready") == "complete" and f.get("fonts") == "loaded" and all(i["complete"] for i in f["images"])
                    and unquote(self.evaluate("location.href")) == unquote(url)): return {**f, "requests": list(self.requests)}
            if time.time() > deadline: raise TimeoutError(f"{url} did not finish loading: {f.get('ready')}")

    def __exit__(self, *exc):
        try: self.ws.close()
        finally:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

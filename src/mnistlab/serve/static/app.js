// The draw-a-digit page: strokes on #pad are sent as a PNG when a stroke ends (debounced, one request at a
// time), to /predict for the answer and to /explain for what the model saw and why. Plain JavaScript, no
// build step, nothing fetched from elsewhere.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const INK_WIDTH = pad.width / 14;  // about an MNIST stroke once the drawing is reduced to 20x20 pixels
const DEBOUNCE_MS = 200;

let strokes = [];        // each a list of [x, y] in pad pixels
let current = null;      // the stroke being drawn
let photo = null;        // an uploaded file: sent as it is (the server preprocesses it as `predict` does)
let photoImage = null;   // its picture, drawn under the strokes
let timer = null, busy = false, again = false;

function redraw() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  if (photoImage) {
    const scale = Math.min(pad.width / photoImage.width, pad.height / photoImage.height);
    const w = photoImage.width * scale, h = photoImage.height * scale;
    ink.drawImage(photoImage, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  }
  ink.strokeStyle = "#000";
  ink.lineWidth = INK_WIDTH;
  ink.lineCap = ink.lineJoin = "round";
  for (const stroke of strokes) {
    ink.beginPath();
    ink.moveTo(stroke[0][0], stroke[0][1]);
    for (const [x, y] of stroke.slice(1)) ink.lineTo(x, y);
    if (stroke.length === 1) ink.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
    ink.stroke();
  }
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  current = [point(event)];
  strokes.push(current);
  clearTimeout(timer);
  redraw();
});
pad.addEventListener("pointermove", (event) => {
  if (!current) return;
  for (const e of event.getCoalescedEvents ? event.getCoalescedEvents() : [event]) current.push(point(e));
  redraw();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!current) return;
    current = null;
    schedule();
  });
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(ask, DEBOUNCE_MS);
}

function clearAll() {
  strokes = [];
  photo = photoImage = null;
  redraw();
  showAnswer(null);
  drawImage(document.getElementById("seen"), null);
  drawSaliency(null, null);
  status("");
}

function undo() {
  strokes.pop();
  redraw();
  if (strokes.length || photo) schedule(); else clearAll();
}

document.getElementById("clear").addEventListener("click", clearAll);
document.getElementById("undo").addEventListener("click", undo);
document.getElementById("tta").addEventListener("change", () => { if (strokes.length || photo) schedule(); });
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
  else if (event.key === "Escape") clearAll();
});

function useFile(file) {
  if (!file) return;
  photo = file;
  strokes = [];
  photoImage = null;
  redraw();
  if (file.type.startsWith("image/")) {
    const image = new Image();
    image.onload = () => { photoImage = image; redraw(); URL.revokeObjectURL(image.src); };
    image.src = URL.createObjectURL(file);
  }
  schedule();
}
for (const id of ["upload", "camera"]) {
  const input = document.getElementById(id);
  input.addEventListener("change", () => { useFile(input.files[0]); input.value = ""; });
}
pad.addEventListener("dragover", (event) => { event.preventDefault(); pad.classList.add("dragging"); });
pad.addEventListener("dragleave", () => pad.classList.remove("dragging"));
pad.addEventListener("drop", (event) => {
  event.preventDefault();
  pad.classList.remove("dragging");
  useFile(event.dataTransfer.files[0]);
});

function padBlob() {
  return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
}

async function ask() {
  if (busy) { again = true; return; }  // one request at a time: the latest drawing is sent when it returns
  if (!strokes.length && !photo) return;
  busy = true;
  try {
    // a photo with nothing drawn on it goes as it is; once drawn on, the pad goes
    const file = photo && !strokes.length ? photo : await padBlob();
    const name = photo && !strokes.length ? photo.name : "pad.png";
    const tta = document.getElementById("tta").checked;
    const form = new FormData();
    form.append("files", file, name);
    const answer = await post(`predict?top_k=${Math.min(5, classes.length || 5)}&tta=${tta}`, form);
    const result = answer[0];
    showAnswer(result.predictions[0]);
    status(result.predictions.length > 1 ? `the file holds ${result.predictions.length} images: the first is shown` : "");
    const one = new FormData();
    one.append("file", file, name);
    const explained = await post(`explain?tta=${tta}`, one);
    drawImage(document.getElementById("seen"), explained.image);
    drawSaliency(explained.image, explained.saliency);
  } catch (error) {
    showAnswer(null);
    status(error.message, true);
  } finally {
    busy = false;
    if (again) { again = false; schedule(); }
  }
}

async function post(url, form) {
  const response = await fetch(url, { method: "POST", body: form });
  const body = await response.json().catch(() => ({ detail: `the server answered ${response.status}` }));
  if (!response.ok) throw new Error(body.results ? body.results.map((r) => r.error).join("; ") : body.detail);
  return body;
}

function status(text, isError = false) {
  const line = document.getElementById("status");
  line.textContent = text;
  line.classList.toggle("error", isError);
}

function showAnswer(prediction) {
  const output = document.getElementById("prediction");
  const bars = document.getElementById("bars");
  bars.replaceChildren();
  output.textContent = prediction ? prediction.name : "";
  document.getElementById("confidence").textContent = prediction ? `(${(100 * prediction.probability).toFixed(1)}%)` : "";
  if (!prediction) return;
  for (const entry of prediction.top) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = entry.name;
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.display = "block";
    bar.style.width = `${(100 * entry.probability).toFixed(1)}%`;
    track.append(bar);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(100 * entry.probability).toFixed(1)}%`;
    item.setAttribute("aria-label", `${entry.name}: ${(100 * entry.probability).toFixed(1)} percent`);
    item.append(label, track, value);
    bars.append(item);
  }
}

function drawImage(canvas, image) {
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!image) return;
  const pixels = context.createImageData(canvas.width, canvas.height);
  image.flat().forEach((v, i) => { pixels.data.set([v, v, v, 255], 4 * i); });
  context.putImageData(pixels, 0, 0);
}

function drawSaliency(image, saliency) {
  const canvas = document.getElementById("saliency");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!saliency) return;
  const pixels = context.createImageData(canvas.width, canvas.height);
  const flat = saliency.flat(), seen = image.flat();
  flat.forEach((s, i) => {
    const base = seen[i] * 0.35;  // the picture, faint, under the map
    const r = s > 0 ? base + (255 - base) * s : base * (1 + s);
    const b = s < 0 ? base + (255 - base) * -s : base * (1 - s);
    const g = base * (1 - Math.abs(s));
    pixels.data.set([r, g, b, 255], 4 * i);
  });
  context.putImageData(pixels, 0, 0);
}

let classes = [];
async function loadCard() {
  try {
    const card = await (await fetch("info")).json();
    classes = card.classes;
    document.getElementById("subject").textContent = card.subject;
    const rows = [
      ["model", card.ensemble ? `an ensemble of ${card.members.length}` : card.models[0]],
      ["parameters", card.parameters.toLocaleString("en")],
      ["dataset", card.dataset_name || "unknown"],
      ["classes", card.classes.join(", ")],
      ["test accuracy", card.test_accuracy == null ? "not measured" : `${(100 * card.test_accuracy).toFixed(2)}%`],
      ["from", card.source],
    ];
    if (card.ensemble) {
      card.members.forEach((m, i) => rows.push([`member ${i + 1}`, `${m.model}, ${m.parameters.toLocaleString("en")} parameters, from ${m.source}`]));
    }
    const list = document.getElementById("card");
    for (const [term, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
  } catch (error) {
    status(`could not read the model card: ${error.message}`, true);
  }
}

redraw();
loadCard();

// The model picker (GET /api/models: name and price in credits per 1K tokens) and the recommendation
// control (POST /api/models/recommend {task, priority}) that selects the model it recommends.

import { json } from "./api.js";
import { apiURL } from "./config.js";
import { el } from "./dom.js";
import { showError } from "./errors.js";

let models = [];
let defaultModelId = "";

/** Binds the picker and the recommendation form; call once at start. */
export function initModels() {
  const select = document.getElementById("model-select");
  select.addEventListener("change", showPrice);
  document.getElementById("recommend-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await recommend();
  });
}

/** Loads the models the caller's role may use into #model-select, the catalog's default selected. */
export async function loadModels() {
  const select = document.getElementById("model-select");
  try {
    const answer = await json(apiURL("/api/models"));
    models = Array.isArray(answer?.models) ? answer.models : [];
    defaultModelId = answer?.defaultModelId ?? models[0]?.id ?? "";
  } catch (error) {
    showError(error, "Loading the models");
    return;
  }
  const previous = select.value;
  select.replaceChildren(
    ...models.map((model) => el("option", { value: model.id }, `${model.name} — ${priceText(model)}`)),
  );
  selectModel(models.some((m) => m.id === previous) ? previous : defaultModelId);
}

/** The id of the selected model ("" before the list is loaded). */
export function selectedModel() {
  return document.getElementById("model-select").value;
}

/** Selects the model with `id` when the list has it; returns whether it did. */
export function selectModel(id) {
  const select = document.getElementById("model-select");
  if (!models.some((m) => m.id === id)) return false;
  select.value = id;
  showPrice();
  return true;
}

/** A model's display name, or its id when the list does not have it. */
export function modelName(id) {
  return models.find((m) => m.id === id)?.name ?? id ?? "";
}

/** Empties the picker (after a sign-out). */
export function clearModels() {
  models = [];
  document.getElementById("model-select").replaceChildren();
  document.getElementById("model-price").textContent = "";
  document.getElementById("recommend-result").textContent = "";
}

function priceText(model) {
  const p = model.pricing ?? {};
  return `${p.inputCreditsPer1K ?? "?"} in / ${p.outputCreditsPer1K ?? "?"} out credits per 1K tokens`;
}

function showPrice() {
  const model = models.find((m) => m.id === selectedModel());
  document.getElementById("model-price").textContent = model
    ? `${model.name} (${model.provider}): ${priceText(model)}; context ${model.contextWindow.toLocaleString()} tokens, replies up to ${model.maxOutputTokens.toLocaleString()}.`
    : "";
}

async function recommend() {
  const task = document.getElementById("recommend-task");
  const priority = document.getElementById("recommend-priority").value;
  const result = document.getElementById("recommend-result");
  const button = document.getElementById("recommend-button");
  if (!task.value.trim()) {
    result.textContent = "Describe the task first.";
    task.focus();
    return;
  }
  button.disabled = true;
  try {
    const answer = await json(apiURL("/api/models/recommend"), {
      method: "POST",
      body: { task: task.value.trim(), priority },
    });
    const id = answer?.recommendedModel?.id;
    const selected = selectModel(id);
    result.textContent = `${selected ? "Selected" : "Recommended"}: ${answer?.recommendedModel?.name ?? id}. ${answer?.reason ?? ""}`;
  } catch (error) {
    result.textContent = "";
    showError(error, "Recommending a model");
  } finally {
    button.disabled = false;
  }
}

// The demo customer app: signs in sample users and calls HalWidget as a real app would.
"use strict";

(function () {
  const appId = document.body.dataset.appId;
  const log = (line) => {
    const out = document.getElementById("log");
    out.textContent = `${new Date().toLocaleTimeString()} ${line}\n` + out.textContent;
  };
  let user = null;

  const params = new URLSearchParams(window.location.search);
  const poll = Number(params.get("poll")) || undefined;
  HalWidget.boot({ app_id: appId, api_base: "", poll_ms: poll, idle_poll_ms: poll });

  function currentCompany() { return document.getElementById("company").value; }

  async function signIn(key) {
    const response = await fetch(`/demo/identity/${key}`);
    user = await response.json();
    const answer = await HalWidget.identify(user.identify);
    document.getElementById("signed-out").hidden = true;
    document.getElementById("app").hidden = false;
    document.getElementById("signed-in").textContent = user.identify.email;
    document.getElementById("user-name").textContent = user.identify.name;
    const select = document.getElementById("company");
    select.replaceChildren(...user.companies.map((company) => new Option(company.name, company.id)));
    document.getElementById("stage").textContent = answer.active_company ? answer.active_company.stage || "" : "";
    log(`identified ${answer.contact.email} (verified: ${answer.contact.verified})`);
  }

  async function switchCompany() {
    const company = user.companies.find((c) => c.id === currentCompany());
    const answer = await HalWidget.identify({ ...user.identify, company: { id: company.id, name: company.name } });
    document.getElementById("stage").textContent = answer.active_company.stage || "";
    log(`active company: ${company.name}`);
  }

  async function upgrade() {
    const company_id = currentCompany();
    await HalWidget.track("plan-upgraded", { from: "pro", to: "enterprise" }, { company_id });
    const stage = await HalWidget.setStage("Customer", { company_id });
    await HalWidget.setDeal({ id: `upgrade-${company_id}`, name: "Enterprise upgrade", amount: 12000,
      currency: "USD", status: "won", stage: "Closed won" }, { company_id });
    await HalWidget.setProperties({ plan: "enterprise" });
    document.getElementById("stage").textContent = stage.company.stage;
    log(`upgraded ${company_id}: stage ${stage.stage.applied ? "set" : "kept"} (${stage.company.stage})`);
  }

  async function logout() {
    await HalWidget.reset();
    user = null;
    document.getElementById("app").hidden = true;
    document.getElementById("signed-out").hidden = false;
    document.getElementById("signed-in").textContent = "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-user]").forEach((button) => {
      button.addEventListener("click", () => signIn(button.dataset.user).catch((e) => log(`error ${e.code}`)));
    });
    document.getElementById("company").addEventListener("change", () => switchCompany());
    document.getElementById("upgrade").addEventListener("click", () => upgrade().catch((e) => log(`error ${e.code}`)));
    document.getElementById("chat").addEventListener("click", () => HalWidget.open());
    document.getElementById("logout").addEventListener("click", () => logout());
    HalWidget.on("message", (message) => log(`agent: ${message.body}`));
  });
})();

// A customer's app written against widget.d.ts: every method, option, event and answer type.
// tests/browser/test_widget_types.py compiles it with `tsc --noEmit --strict`; each
// `@ts-expect-error` line must stay an error, so the declarations do not decay into `any`.
import type {
  Company,
  Contact,
  Conversation,
  HalError,
  HalWidgetApi,
  IdentifyResult,
  Message,
  MessagesResult,
  Metadata,
  StageWrite,
  StoredDeal,
  TrackedEvent,
} from "../../src/hal/web/static/widget";

function show(...values: unknown[]): void {
  console.log(...values);
}

export async function customerApp(widget: HalWidgetApi = window.HalWidget): Promise<void> {
  const version: string = widget.version;
  const booted = await widget.boot({
    app_id: "demo", api_base: "https://hal.example.com", launcher: false,
    poll_ms: 3000, idle_poll_ms: 15000,
  });
  const visitor: string = booted.visitor_id;
  const current: string | null = widget.getVisitorId();

  const identified: IdentifyResult = await widget.identify({
    user_id: "user_456", email: "alice@acme.com", name: "Alice",
    metadata: { plan: "enterprise", seats: 12, beta: true, gone: null, tags: ["a", 1, null] },
    company: { id: "acme", name: "Acme Inc", stage: "Trial", metadata: { arr: 50000 } },
    company_ids: ["acme", "globex"], user_hash: "0f1e", identity_token: "eyJ...",
    stage_mode: "forward_only",
  });
  const contact: Contact = identified.contact;
  const proofs: [boolean, boolean] = [contact.verified, contact.email_verified];
  const active: Company | null = identified.active_company;
  const write: StageWrite | null = identified.stage;
  for (const warning of identified.warnings) {
    if (warning === "email_in_use" || warning.startsWith("attribute_type:")) show(warning);
  }
  await widget.identify({ email: "alice@acme.com", company: null });

  const properties = await widget.setProperties({ theme: "dark", seats: null });
  const collected: Metadata = properties.properties;
  const bound: Contact | null = properties.contact;
  const left: string[] = properties.warnings;

  const tracked = await widget.track("plan-upgraded", { from: "pro" }, {
    company_id: "acme", scope: "company", event_id: "evt_1", occurred_at: "2026-01-01T00:00:00Z",
  });
  if (tracked.duplicate) {
    const id: number = tracked.event.id;
    show(id);
  } else {
    const event: TrackedEvent = tracked.event;
    show(event.name, event.scope, event.company_id);
  }
  await widget.track("page-viewed");

  const staged = await widget.setStage("Customer", { company_id: "acme", stage_mode: "agent_wins" });
  const applied: boolean = staged.stage.applied;
  const stage: string | null = staged.company.stage;
  await widget.setStage("Customer");

  const dealt = await widget.setDeal(
    { id: "d1", name: "Enterprise", amount: 50000, currency: "USD", stage: "Won",
      status: "won", close_date: "2026-12-31", metadata: { seats: 40 } },
    { company_id: "acme" },
  );
  const deal: StoredDeal = dealt.deal;
  const changed: string[] = dealt.changed;
  const created: boolean = dealt.created;

  const sent = await widget.sendMessage("Hello");
  const message: Message = sent.message;
  const thread: Conversation = sent.conversation;
  const read: MessagesResult = await widget.fetchMessages();
  const replies: Message[] = read.conversation?.messages.filter((m) => m.author === "agent") ?? [];
  const all: number = read.conversations.length;

  const off: () => void = widget.on("message", (reply) => show(reply.body, reply.conversation_id));
  off();
  widget.on("identify", (answer) => show(answer.session_token));
  widget.on("ready", (ready) => show(ready.visitor_id));
  widget.on("reset", (reset) => show(reset.visitor_id));
  widget.on("open", () => show("opened"));
  widget.on("close", () => show("closed"));
  widget.on("error", (error: HalError) => show(error.code, error.status, error.field));

  await widget.open();
  await widget.close();
  const fresh = await widget.reset();
  show(version, visitor, current, proofs, active, write, collected, bound, left, applied, stage,
       deal, changed, created, message, thread, replies, all, fresh.visitor_id);

  try {
    await widget.identify({ user_id: "u" });
  } catch (caught) {
    const error = caught as HalError;
    if (error.name === "HalError" && error.code === "invalid_user_hash") show(error.message);
  }

  // What the declarations refuse.
  // @ts-expect-error: boot needs app_id
  await widget.boot({});
  // @ts-expect-error: a company needs its id
  await widget.identify({ company: { name: "Acme" } });
  // @ts-expect-error: metadata values are scalars or lists of scalars
  await widget.setProperties({ nested: { deep: 1 } });
  // @ts-expect-error: not a stage mode
  await widget.setStage("Customer", { stage_mode: "sometimes" });
  // @ts-expect-error: not a deal status
  await widget.setDeal({ id: "d1", status: "pending" });
  // @ts-expect-error: an event the widget does not emit
  widget.on("typing", () => undefined);
  // @ts-expect-error: a message listener gets a Message
  widget.on("message", (reply: { text: string }) => show(reply.text));
  // @ts-expect-error: an event's scope is contact or company
  await widget.track("x", {}, { scope: "visitor" });
  // @ts-expect-error: fetchMessages answers a conversation that may be null
  const id: number = (await widget.fetchMessages()).conversation.id;
  show(id);
}

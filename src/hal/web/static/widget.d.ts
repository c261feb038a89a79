// TypeScript declarations for the HAL widget SDK (window.HalWidget), served at /widget.d.ts.
// Checked against widget.js and the API's answers by tests/sdk/test_widget_types.py.

type JsonScalar = string | number | boolean | null;
type MetadataValue = JsonScalar | JsonScalar[];
export type Metadata = Record<string, MetadataValue>;
export type StageMode = "overwrite" | "if_empty" | "forward_only" | "agent_wins";

export interface HalError extends Error {
  name: "HalError";
  /** The server's error code, e.g. "invalid_user_hash"; "network_error" when the server
   * could not be reached after the retries; "not_booted" before boot. */
  code: string;
  /** HTTP status; 0 when the server could not be reached (or for an SDK-side refusal). */
  status: number;
  /** The field at fault, as the server named it. */
  field: string | null;
}

export interface BootOptions {
  app_id: string;
  /** Where HAL runs, e.g. "https://hal.example.com"; default: this page's origin. */
  api_base?: string;
  /** Show the chat bubble (default true). */
  launcher?: boolean;
  /** How often to fetch replies while the chat is open / closed (ms), when the live stream
   * is down. */
  poll_ms?: number;
  idle_poll_ms?: number;
}

export interface CompanyInput {
  id: string; name?: string; stage?: string; metadata?: Metadata;
}

export interface IdentifyInput {
  user_id?: string; email?: string; name?: string; metadata?: Metadata;
  /** Upserted, linked and made the active company; null clears the active company. */
  company?: CompanyInput | null; company_ids?: string[];
  user_hash?: string; identity_token?: string; stage_mode?: StageMode;
}

export interface Contact {
  id: number; user_id: string | null; email: string | null; name: string | null;
  metadata: Metadata;
  /** A proof signed this contact's user_id (or its email, when it has no user_id). */
  verified: boolean;
  /** A proof signed this contact's email. */
  email_verified: boolean;
}

/** Name, stage and metadata are withheld (null, {}) from unverified visitors when the
 * company has verified contacts. */
export interface Company { id: string; name: string | null; stage: string | null; metadata: Metadata; }

export interface StageWrite {
  applied: boolean; previous: string | null;
  /** The company's stage after the write. */
  stage: string | null; mode: StageMode;
  reason: "unchanged" | "stage_already_set" | "not_forward" | "set_by_agent" | null;
}

/** Metadata a write left out names its key; the rest of the call was written. */
export type AttributeWarning =
  | `attribute_type:${string}` | `attribute_archived:${string}` | `too_many_attributes:${string}`;

export interface IdentifyResult {
  visitor_id: string; contact: Contact; active_company: Company | null;
  /** Every company now linked to the contact. */
  company_ids: string[];
  session_token: string;
  warnings: ("email_in_use" | AttributeWarning)[];
  stage: StageWrite | null;
}

export interface SetPropertiesResult {
  visitor_id: string;
  /** The bound contact; null while the visitor is anonymous. */
  contact: Contact | null;
  /** What the visitor collected while anonymous (empty once identified). */
  properties: Metadata;
  warnings: AttributeWarning[];
}

export interface TrackOptions {
  company_id?: string; scope?: "contact" | "company";
  /** Idempotency key (the SDK makes one when absent): a repeat stores nothing. */
  event_id?: string;
  /** ISO 8601; default: when track was called. */
  occurred_at?: string;
}

export interface TrackedEvent {
  id: number; name: string; scope: "contact" | "company"; properties: Metadata;
  occurred_at: string; received_at: string; event_id: string | null;
  contact_id: number | null; company_id: string | null;
}

export type TrackResult =
  | { event: TrackedEvent; duplicate: false }
  /** A repeat of the caller's event_id: the stored event's id only. */
  | { event: { id: number }; duplicate: true };

export interface Deal {
  id: string; name?: string; amount?: number; currency?: string; stage?: string;
  status?: "open" | "won" | "lost"; close_date?: string; metadata?: Metadata;
}

export interface StoredDeal {
  id: string; name: string | null; amount: number | null; currency: string | null;
  stage: string | null; status: "open" | "won" | "lost"; close_date: string | null;
  metadata: Metadata; updated_at: string;
}

export interface SetStageResult { company: Company; stage: StageWrite; }

export interface SetDealResult {
  company: Company; deal: StoredDeal; created: boolean;
  /** The fields this write changed. */
  changed: string[];
}

export interface Message {
  id: number; author: "visitor" | "agent"; author_name: string | null; body: string;
  /** The visitor's identity was verified when it was sent. */
  sender_verified: boolean; created_at: string;
}

/** What the `message` event gives: an agent's reply, and its conversation. */
export interface AgentReply extends Message { conversation_id: number; }

export interface Conversation {
  id: number; status: "open" | "closed"; created_at: string; last_message_at: string;
  messages: Message[];
}

export interface SendMessageResult { conversation: Conversation; message: Message; }

export interface MessagesResult {
  /** The visitor's open conversation (or its latest one); null before the first message. */
  conversation: Conversation | null;
  /** Every conversation this visitor may read, newest first. */
  conversations: Conversation[];
}

/** What each event's listener receives. */
export interface WidgetEvents {
  ready: { visitor_id: string };
  identify: IdentifyResult;
  /** An agent's reply the visitor had not seen. */
  message: AgentReply;
  open: Record<string, never>;
  close: Record<string, never>;
  reset: { visitor_id: string };
  /** A call that failed (its promise rejects with the same error). */
  error: HalError;
}

export type WidgetEvent = keyof WidgetEvents;

export interface HalWidgetApi {
  version: string;
  boot(options: BootOptions): Promise<{ visitor_id: string }>;
  identify(input: IdentifyInput): Promise<IdentifyResult>;
  setProperties(properties: Metadata): Promise<SetPropertiesResult>;
  track(event: string, properties?: Metadata, options?: TrackOptions): Promise<TrackResult>;
  setStage(stage: string, options?: { company_id?: string; stage_mode?: StageMode }): Promise<SetStageResult>;
  setDeal(deal: Deal, options?: { company_id?: string }): Promise<SetDealResult>;
  /** Log out: a new anonymous visitor id; the session token is dropped. */
  reset(): Promise<{ visitor_id: string }>;
  open(): Promise<void>;
  close(): Promise<void>;
  /** Returns a function that removes the listener (the loader's stub, before widget.js has
   * arrived, returns a Promise of it). */
  on<E extends WidgetEvent>(event: E, listener: (payload: WidgetEvents[E]) => void): () => void;
  /** The loader's stub, before widget.js has arrived, returns a Promise of it. */
  getVisitorId(): string | null;
  sendMessage(body: string): Promise<SendMessageResult>;
  /** The visitor's conversations now (the chat shows new messages by itself). */
  fetchMessages(): Promise<MessagesResult>;
}

declare global {
  interface Window { HalWidget: HalWidgetApi; HAL_BASE?: string; }
}

// TypeScript declarations for the HAL widget SDK (window.HalWidget).

type JsonScalar = string | number | boolean | null;
type MetadataValue = JsonScalar | JsonScalar[];
export type Metadata = Record<string, MetadataValue>;
export type StageMode = "overwrite" | "if_empty" | "forward_only" | "agent_wins";

export interface HalError extends Error {
  name: "HalError";
  /** The server's error code, e.g. "invalid_user_hash", or "network_error". */
  code: string;
  /** HTTP status; 0 when the server could not be reached. */
  status: number;
  field: string | null;
}

export interface BootOptions {
  app_id: string;
  /** Where HAL runs, e.g. "https://hal.example.com"; default: this page's origin. */
  api_base?: string;
  /** Show the chat bubble (default true). */
  launcher?: boolean;
  /** How often to fetch replies while the chat is open / closed (ms). */
  poll_ms?: number;
  idle_poll_ms?: number;
}

export interface CompanyInput {
  id: string; name?: string; stage?: string; metadata?: Metadata;
}

export interface IdentifyInput {
  user_id?: string; email?: string; name?: string; metadata?: Metadata;
  company?: CompanyInput | null; company_ids?: string[];
  user_hash?: string; identity_token?: string; stage_mode?: StageMode;
}

export interface Contact {
  id: number; user_id: string | null; email: string | null; name: string | null;
  metadata: Metadata; verified: boolean;
}

export interface Company { id: string; name: string | null; stage: string | null; metadata: Metadata; }

export interface StageWrite {
  applied: boolean; previous: string | null; stage: string | null; mode: StageMode;
  reason: "unchanged" | "stage_already_set" | "not_forward" | "set_by_agent" | null;
}

export interface IdentifyResult {
  visitor_id: string; contact: Contact; active_company: Company | null; company_ids: string[];
  session_token: string; warnings: "email_in_use"[]; stage: StageWrite | null;
}

export interface TrackOptions {
  company_id?: string; scope?: "contact" | "company"; event_id?: string; occurred_at?: string;
}

export interface Deal {
  id: string; name?: string; amount?: number; currency?: string; stage?: string;
  status?: "open" | "won" | "lost"; close_date?: string; metadata?: Metadata;
}

export interface Message {
  id: number; author: "visitor" | "agent"; author_name: string | null; body: string;
  sender_verified: boolean; created_at: string;
}

export type WidgetEvent = "ready" | "identify" | "message" | "open" | "close" | "reset" | "error";

export interface HalWidgetApi {
  version: string;
  boot(options: BootOptions): Promise<{ visitor_id: string }>;
  identify(input: IdentifyInput): Promise<IdentifyResult>;
  setProperties(properties: Metadata): Promise<{ visitor_id: string; contact: Contact | null; properties: Metadata }>;
  track(event: string, properties?: Metadata, options?: TrackOptions): Promise<{ event: unknown; duplicate: boolean }>;
  setStage(stage: string, options?: { company_id?: string; stage_mode?: StageMode }): Promise<{ company: Company; stage: StageWrite }>;
  setDeal(deal: Deal, options?: { company_id?: string }): Promise<{ company: Company; deal: Deal; created: boolean; changed: string[] }>;
  /** Log out: a new anonymous visitor id; the session token is dropped. */
  reset(): Promise<{ visitor_id: string }>;
  open(): Promise<void>;
  close(): Promise<void>;
  /** Returns a function that removes the listener (the loader stub returns a Promise of it). */
  on(event: WidgetEvent, listener: (payload: any) => void): () => void;
  getVisitorId(): string | null;
  sendMessage(body: string): Promise<{ message: Message }>;
}

declare global {
  interface Window { HalWidget: HalWidgetApi; HAL_BASE?: string; }
}

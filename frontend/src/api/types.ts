// Names for the generated OpenAPI schemas (schema.d.ts is generated: `npm run gen:api`).
import type { components, paths } from "./schema";

type S = components["schemas"];
export type Problem = S["Problem"];
export type Me = S["MeOut"];
export type MyWorkspace = S["MyWorkspace"];
export type Workspace = S["WorkspaceOut"];
export type Role = Workspace["role"];
export type Prompt = S["PromptOut"];
export type PromptPage = S["Page_PromptOut_"];
export type Version = S["VersionOut"];
// By its route: the schema's own name changes when another package has a model of the same name.
export type VersionSummary =
  paths["/api/v1/workspaces/{ws}/prompts/{prompt_id}/versions"]["get"]["responses"]["200"]["content"]["application/json"][number];
export type VersionIn = S["VersionIn"];
export type VersionContent = S["VersionContent"];
export type Message = S["MessageIn"];
export type ModelConfig = S["ModelConfigIn"];
export type Label = S["LabelOut"];
export type Comment = S["CommentOut"];
export type Run = S["RunOut"];
export type RunPage = S["Page_RunOut_"];
export type RunIn = S["RunIn"];
export type RunAccepted = S["RunAccepted"];
export type RunStatus = Run["status"];
export type Estimate = S["Estimate"];
export type CodeOut = S["CodeOut"];
export type CodeLanguage = CodeOut["language"];
export type WorkspaceModel = S["WorkspaceModelOut"];
export type Usage = S["UsageOut"];
export type UsageRow = S["UsageRow"];
export type LatencyRow = S["LatencyRow"];
export type Member = S["MemberOut"];
export type MemberAdded = S["MemberAdded"];
export type Invitation = S["InvitationOut"];
export type ApiKey = S["ApiKeyOut"];
export type ApiKeyCreated = S["ApiKeyCreated"];
export type ProviderCredential = S["ProviderOut"];
export type Limits = S["LimitsOut"];
export type LimitsIn = S["LimitsIn"];

export const TERMINAL_STATUSES: readonly RunStatus[] = ["succeeded", "failed", "cancelled"];

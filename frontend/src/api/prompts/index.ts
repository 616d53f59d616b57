export { promptKeys } from "./keys";
export * from "./queries";

// Routes exactly as API.md lists them ("Browser routes and test hooks").
import { lazy, type ReactNode, Suspense } from "react";
import { createBrowserRouter } from "react-router";
import { RequireAuth } from "./components/RequireAuth";
import { RouteError } from "./components/RouteError";
import { WorkspaceLayout } from "./components/WorkspaceLayout";
import { AdminSafetyScreen } from "./screens/AdminSafety/AdminSafetyScreen";
import { AccountScreen } from "./screens/Account/AccountScreen";
import { CompareScreen } from "./screens/Compare/CompareScreen";
import { ComparisonsScreen } from "./screens/Compare/ComparisonsScreen";
import { DatasetScreen } from "./screens/Datasets/DatasetScreen";
import { DatasetsScreen } from "./screens/Datasets/DatasetsScreen";
import { EditorScreen } from "./screens/Editor/EditorScreen";
import { HomeScreen } from "./screens/Home/HomeScreen";
import { InstanceAdminScreen } from "./screens/InstanceAdmin/InstanceAdminScreen";
import { LoginScreen } from "./screens/Login/LoginScreen";
import { NotFoundScreen } from "./screens/NotFound/NotFoundScreen";
import { PromptsScreen } from "./screens/Prompts/PromptsScreen";
import { ResetPasswordScreen } from "./screens/ResetPassword/ResetPasswordScreen";
import { RunDetailScreen } from "./screens/RunDetail/RunDetailScreen";
import { RunsScreen } from "./screens/Runs/RunsScreen";
import { SettingsScreen } from "./screens/Settings/SettingsScreen";
import { SignupScreen } from "./screens/Signup/SignupScreen";
import { Loading } from "./components/States";

// The heavy screens (charts, the merge view) load when first opened.
const AdminUsageScreen = lazy(() => import("./screens/AdminUsage/AdminUsageScreen").then((m) => ({ default: m.AdminUsageScreen })));
const VersionScreen = lazy(() => import("./screens/Version/VersionScreen").then((m) => ({ default: m.VersionScreen })));
const later = (screen: ReactNode) => <Suspense fallback={<Loading />}>{screen}</Suspense>;

export const router = createBrowserRouter([
  { path: "/login", element: <LoginScreen /> },
  { path: "/signup", element: <SignupScreen /> },
  { path: "/reset-password", element: <ResetPasswordScreen /> },
  {
    element: <RequireAuth />,
    errorElement: <RouteError />,
    children: [
      { path: "/", element: <HomeScreen /> },
      { path: "/account", element: <AccountScreen /> },
      { path: "/admin", element: <InstanceAdminScreen /> },
      {
        path: "/w/:ws",
        element: <WorkspaceLayout />,
        errorElement: <RouteError />,
        children: [
          { index: true, element: <PromptsScreen /> },
          { path: "prompts", element: <PromptsScreen /> },
          { path: "prompts/:promptId", element: <EditorScreen /> },
          { path: "prompts/:promptId/versions/:number", element: later(<VersionScreen />) },
          { path: "runs", element: <RunsScreen /> },
          { path: "runs/:runId", element: <RunDetailScreen /> },
          { path: "compare", element: <ComparisonsScreen /> },
          { path: "compare/:comparisonId", element: <CompareScreen /> },
          { path: "datasets", element: <DatasetsScreen /> },
          { path: "datasets/:datasetId", element: <DatasetScreen /> },
          { path: "settings", element: <SettingsScreen /> },
          { path: "admin/usage", element: later(<AdminUsageScreen />) },
          { path: "admin/safety", element: <AdminSafetyScreen /> },
          { path: "*", element: <NotFoundScreen /> },
        ],
      },
    ],
  },
  { path: "*", element: <NotFoundScreen /> },
]);

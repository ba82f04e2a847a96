import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router'
import { allowed, restore, session } from './auth'
import type { Permission } from './lib/permissions'

declare module 'vue-router' {
  interface RouteMeta {
    title?: string
    permission?: Permission
    public?: boolean
  }
}

const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true, title: '登录' } },
  {
    path: '/',
    component: () => import('./views/AppLayout.vue'),
    children: [
      { path: '', redirect: () => (allowed('stats:read') && !allowed('recording:upload') ? '/dashboard' : '/console') },
      { path: 'console', name: 'console', component: () => import('./views/ConsoleView.vue'),
        meta: { title: '坐席工作台', permission: 'transcript:read' } },
      { path: 'cases', name: 'cases', component: () => import('./views/CasesView.vue'),
        meta: { title: '工单', permission: 'case:read' } },
      { path: 'cases/:id', name: 'case', component: () => import('./views/CaseDetailView.vue'),
        meta: { title: '工单详情', permission: 'case:read' } },
      { path: 'enterprises', name: 'enterprises', component: () => import('./views/EnterprisesView.vue'),
        meta: { title: '企业库', permission: 'enterprise:read' } },
      { path: 'enterprises/:id', name: 'enterprise', component: () => import('./views/EnterpriseDetailView.vue'),
        meta: { title: '企业详情', permission: 'enterprise:read' } },
      { path: 'warnings', name: 'warnings', component: () => import('./views/WarningsView.vue'),
        meta: { title: '预警中心', permission: 'warning:read' } },
      { path: 'warnings/rules', name: 'warning-rules', component: () => import('./views/WarningRulesView.vue'),
        meta: { title: '预警规则', permission: 'warning:admin' } },
      { path: 'warnings/:id(\\d+)', name: 'warning', component: () => import('./views/WarningDetailView.vue'),
        meta: { title: '预警详情', permission: 'warning:read' } },
      { path: 'ledgers', name: 'ledgers', component: () => import('./views/LedgersView.vue'),
        meta: { title: '台账', permission: 'ledger:read' } },
      { path: 'clues', name: 'clues', component: () => import('./views/CluesView.vue'),
        meta: { title: '线索', permission: 'ledger:read' } },
      { path: 'clues/:id(\\d+)', name: 'clue', component: () => import('./views/ClueDetailView.vue'),
        meta: { title: '线索详情', permission: 'ledger:read' } },
      { path: 'reports', name: 'reports', component: () => import('./views/ReportsView.vue'),
        meta: { title: '报告', permission: 'report:read' } },
      { path: 'capture', name: 'capture', component: () => import('./views/CaptureView.vue'),
        meta: { title: '现场记录', permission: 'recording:upload' } },
      { path: 'dashboard', name: 'dashboard', component: () => import('./views/DashboardView.vue'),
        meta: { title: '管理看板', permission: 'stats:read' } },
      { path: 'admin', name: 'admin', component: () => import('./views/AdminView.vue'),
        meta: { title: '系统管理', permission: 'user:admin' } },
      { path: 'forbidden', name: 'forbidden', component: () => import('./views/ForbiddenView.vue'),
        meta: { title: '无权访问' } },
      { path: ':rest(.*)*', name: 'missing', component: () => import('./views/MissingView.vue'),
        meta: { title: '页面不存在' } },
    ],
  },
]

export const router = createRouter({ history: createWebHashHistory(), routes })

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  let user = session.user
  if (!user) {
    try {
      user = await restore()
    } catch {
      user = null
      session.endedBecause = '无法连接服务器，请检查网络后重新登录'
    }
  }
  if (!user) return { name: 'login', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  if (to.meta.permission && !allowed(to.meta.permission)) {
    return { name: 'forbidden', query: { from: to.meta.title ?? to.fullPath } }
  }
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} - 12351 职工服务热线` : '12351 职工服务热线'
})

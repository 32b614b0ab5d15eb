// The guide's database.js snippets ("Increase lock timeout" under vendor races, and the connection pool
// warmup under slow recovery), exactly as the guide writes them.

// In database.js
await prisma.$executeRaw`SET lock_timeout TO '30s';`

// In database.js onConnect
async function setupConnectionPool() {
  const poolSize = 25;
  for (let i = 0; i < poolSize; i++) {
    await prisma.$queryRaw`SELECT 1`.catch(() => {});
  }
}

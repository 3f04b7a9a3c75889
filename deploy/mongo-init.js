/* global rs, db, print, sleep */
// Initiates the replica set of compose.yaml once; later runs find it initiated and do
// nothing. Run by the one-shot service "mongo-init" with mongosh.
const members = [
  { _id: 0, host: 'mongo-1:27017' },
  { _id: 1, host: 'mongo-2:27017' },
  { _id: 2, host: 'mongo-3:27017' },
];

try {
  const status = rs.status();
  print(`replica set ${status.set} is already initiated`);
} catch (error) {
  if (error.codeName !== 'NotYetInitialized') throw error;
  rs.initiate({ _id: 'rs0', members });
  print('replica set rs0 initiated');
}

// Wait for a primary, so that the provider instances started next can write at once.
for (let i = 0; i < 60; i += 1) {
  if (db.hello().isWritablePrimary || db.hello().primary) break;
  sleep(1000);
}
if (!db.hello().primary) throw new Error('no primary after 60 seconds');
print(`primary: ${db.hello().primary}`);
